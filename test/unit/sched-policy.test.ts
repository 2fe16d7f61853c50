import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { ChildActor, schedPrefix } from '../../shared/process.js';

/** The scheduling policy of a running process from /proc (0 SCHED_OTHER, 3 SCHED_BATCH). */
function policyOf(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/sched`, 'utf8').split('\n').find((l) => /^policy\s/.test(l));
  return Number(line!.split(':')[1]);
}

describe('actor scheduling policy', () => {
  const linuxWithChrt = process.platform === 'linux' && spawnSync('chrt', ['--batch', '0', 'true']).status === 0;

  it('scheduling policy - CLIPPER_SCHED_POLICY is batch (default) or normal; anything else is refused', () => {
    expect(schedPrefix({ CLIPPER_SCHED_POLICY: 'normal' })).to.deep.equal([]);
    expect(schedPrefix({})).to.deep.equal(linuxWithChrt ? ['chrt', '--batch', '0'] : []);
    expect(schedPrefix({ CLIPPER_SCHED_POLICY: 'batch' })).to.deep.equal(schedPrefix({}));
    expect(() => schedPrefix({ CLIPPER_SCHED_POLICY: 'fifo' })).to.throw(/CLIPPER_SCHED_POLICY must be one of batch, normal, got "fifo"/);
  });

  it('scheduling policy - an actor process runs under SCHED_BATCH by default and SCHED_OTHER with normal; its pid and exit code are its own', async function () {
    if (!linuxWithChrt) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clipper-sched-'));
    const script = path.join(dir, 'idle.mjs');
    // Says it is up (its SIGTERM handler in place) by writing ready-<pid> next to itself.
    fs.writeFileSync(script, "import fs from 'node:fs';\nprocess.on('SIGTERM', () => process.exit(7));\nsetInterval(() => {}, 1000);\nfs.writeFileSync(new URL(`ready-${process.pid}`, import.meta.url), '');\n");
    try {
      for (const [policy, expected] of [['batch', 3], ['normal', 0]] as const) {
        const actor = new ChildActor('idle', script, { env: { ...process.env, CLIPPER_SCHED_POLICY: policy } });
        // chrt execs node in place, so the pid that says it is ready is the one spawned.
        const until = Date.now() + 10_000;
        while (!fs.existsSync(path.join(dir, `ready-${actor.child.pid}`)) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        expect(policyOf(actor.child.pid!), policy).to.equal(expected);
        actor.child.kill('SIGTERM');
        expect(await actor.exited, policy).to.equal(7);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
