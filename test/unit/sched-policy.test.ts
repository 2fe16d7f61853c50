import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ChildActor, findExecutable, schedPolicy, schedPrefix } from '../../shared/process.js';

/** The scheduling policy of a running process, field 41 of /proc/<pid>/stat (0 SCHED_OTHER, 3 SCHED_BATCH). */
function policyOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[41 - 3]);
}

describe('actor scheduling policy', () => {
  const chrt = process.platform === 'linux' ? findExecutable('chrt') : undefined;

  it('scheduling policy - CLIPPER_SCHED_POLICY is batch (default, also when empty) or normal; anything else is refused', () => {
    expect(schedPolicy({})).to.equal('batch');
    expect(schedPolicy({ CLIPPER_SCHED_POLICY: '' })).to.equal('batch');
    expect(schedPolicy({ CLIPPER_SCHED_POLICY: 'normal' })).to.equal('normal');
    expect(() => schedPolicy({ CLIPPER_SCHED_POLICY: 'fifo' })).to.throw(/CLIPPER_SCHED_POLICY must be one of batch, normal, got "fifo"/);
    expect(() => schedPrefix({ CLIPPER_SCHED_POLICY: 'fifo' })).to.throw(/CLIPPER_SCHED_POLICY/);
    if (schedPrefix({}).length > 0) {
      expect(schedPrefix({})).to.deep.equal([chrt, '--batch', '0']);
      expect(schedPrefix({ CLIPPER_SCHED_POLICY: 'normal' })).to.deep.equal([chrt, '--other', '0']);
    }
  });

  it('scheduling policy - an actor runs under SCHED_BATCH by default and SCHED_OTHER with normal; its pid and exit code are its own', async function () {
    if (schedPrefix({}).length === 0) this.skip(); // no chrt that may set policies here
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clipper-sched-'));
    const script = path.join(dir, 'idle.mjs');
    // Says it is up (its SIGTERM handler in place) by writing ready-<pid> next to itself.
    fs.writeFileSync(script, "import fs from 'node:fs';\nprocess.on('SIGTERM', () => process.exit(7));\nsetInterval(() => {}, 1000);\nfs.writeFileSync(new URL(`ready-${process.pid}`, import.meta.url), '');\n");
    const actors: ChildActor[] = [];
    try {
      for (const [policy, expected] of [['batch', 3], ['normal', 0]] as const) {
        const actor = new ChildActor('idle', script, { env: { ...process.env, CLIPPER_SCHED_POLICY: policy } });
        actors.push(actor);
        // chrt execs node in place, so the pid that says it is ready is the one spawned.
        const ready = path.join(dir, `ready-${actor.child.pid}`);
        const until = Date.now() + 10_000;
        while (!fs.existsSync(ready) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        expect(fs.existsSync(ready), `${policy}: ready`).to.equal(true);
        expect(policyOf(actor.child.pid!), policy).to.equal(expected);
        actor.child.kill('SIGTERM');
        expect(await actor.exited, policy).to.equal(7);
      }
    } finally {
      for (const a of actors) a.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
