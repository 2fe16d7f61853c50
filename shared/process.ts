/** Supervised child processes for actors: spawn node scripts, send their output to a log file, stop them. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the compiled tree (`dist/`), so actors can be found whatever the working directory. */
export const DIST_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Root of the project (where package.json lives). */
export const PROJECT_ROOT = path.resolve(DIST_ROOT, '..');

/** The compiled entry point of an actor, e.g. `actorScript('worker')`. */
export function actorScript(actor: string): string {
  return path.join(DIST_ROOT, 'services', actor, 'main.js');
}

/** Linux scheduling policies an actor process may run under (`CLIPPER_SCHED_POLICY`). */
export const SCHED_POLICIES = ['batch', 'normal'] as const;

let chrtWorks: boolean | undefined;

/**
 * The command prefix that starts a process under `CLIPPER_SCHED_POLICY` (default `batch`): on Linux,
 * `chrt --batch 0` (SCHED_BATCH, the same priority, no privileges needed), when util-linux's chrt is
 * there and the kernel lets it set the policy; otherwise nothing, and the process runs SCHED_OTHER.
 * The actors are event loops that pass each query on over NATS, so every message wakes another
 * process; under SCHED_OTHER the woken one preempts the one that woke it (an ONNX batch, the
 * ingress parsing a body), and on two vCPUs those preemptions were the tail: at 2400 HTTP queries/s,
 * P99 24 ms and 560–690 refused in 4 s under SCHED_OTHER against 18 ms and 50–100 under SCHED_BATCH,
 * and at 4600/s offered 1770–1860 against 2550–2850 model answers a second (docs/benchmarks.md).
 * A SCHED_BATCH process is not preempted by the wake-up of another; it yields the CPU when its
 * event loop waits, as these do within a batch's time. `normal` turns it off. Throws on another value.
 */
export function schedPrefix(env: NodeJS.ProcessEnv = process.env): string[] {
  const policy = env.CLIPPER_SCHED_POLICY ?? 'batch';
  if (!(SCHED_POLICIES as readonly string[]).includes(policy)) throw new Error(`CLIPPER_SCHED_POLICY must be one of ${SCHED_POLICIES.join(', ')}, got ${JSON.stringify(policy)}`);
  if (policy === 'normal' || process.platform !== 'linux') return [];
  chrtWorks ??= spawnSync('chrt', ['--batch', '0', 'true'], { stdio: 'ignore' }).status === 0;
  return chrtWorks ? ['chrt', '--batch', '0'] : [];
}

export interface SpawnOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Append stdout and stderr to this file; inherit the parent's when absent. */
  logFile?: string;
}

/** One child process with a graceful stop. */
export class ChildActor {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(readonly name: string, script: string, opts: SpawnOptions = {}) {
    let stdio: ('inherit' | number | 'ignore')[] = ['ignore', 'inherit', 'inherit'];
    let fd: number | undefined;
    if (opts.logFile) {
      fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
      fd = fs.openSync(opts.logFile, 'a');
      stdio = ['ignore', fd, fd];
    }
    const env = opts.env ?? process.env;
    // Extra node flags for actors (e.g. --max-old-space-size=512, --cpu-prof), which NODE_OPTIONS refuses.
    const nodeArgs = (env.CLIPPER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    // chrt execs node in its own process: the pid, signals and exit code are node's.
    const [command, ...args] = [...schedPrefix(env), process.execPath, ...nodeArgs, script, ...(opts.args ?? [])];
    this.child = spawn(command!, args, { env, stdio });
    if (fd !== undefined) fs.closeSync(fd);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then SIGKILL if it is still running after `graceMs`. */
  async stop(graceMs = 6_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal);
  }
}
