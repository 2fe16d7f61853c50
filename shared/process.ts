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

/** An executable `name` in PATH or the usual system folders, as an absolute path. */
export function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of [...(env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin', '/bin']) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** util-linux's chrt, if it is there and may set both policies here (probed once). */
let chrt: string | null | undefined;
function workingChrt(): string | undefined {
  if (chrt === undefined) {
    const found = process.platform === 'linux' ? findExecutable('chrt') : undefined;
    const works = (flag: string): boolean => spawnSync(found!, [flag, '0', 'true'], { stdio: 'ignore' }).status === 0;
    chrt = found && works('--batch') && works('--other') ? found : null;
  }
  return chrt ?? undefined;
}

/** The policy `CLIPPER_SCHED_POLICY` asks for (unset or empty: `batch`); throws on an unknown one. */
export function schedPolicy(env: NodeJS.ProcessEnv = process.env): (typeof SCHED_POLICIES)[number] {
  const policy = env.CLIPPER_SCHED_POLICY || 'batch';
  if (!(SCHED_POLICIES as readonly string[]).includes(policy)) throw new Error(`CLIPPER_SCHED_POLICY must be one of ${SCHED_POLICIES.join(', ')}, got ${JSON.stringify(policy)}`);
  return policy as (typeof SCHED_POLICIES)[number];
}

/**
 * The command prefix that starts an actor (or the embedded nats-server) under `CLIPPER_SCHED_POLICY`:
 * `chrt --batch 0` (SCHED_BATCH, same priority, no privileges) by default, `chrt --other 0` for
 * `normal`; nothing where chrt is missing or may not set them (not Linux, a restricted container),
 * and the process then keeps its parent's policy. Why SCHED_BATCH: each query passes from process to
 * process over NATS, and a woken SCHED_BATCH process does not preempt the running one (an ONNX batch,
 * the ingress parsing a body) but waits for it to yield or for the tick; measured in docs/benchmarks.md.
 */
export function schedPrefix(env: NodeJS.ProcessEnv = process.env): string[] {
  const policy = schedPolicy(env);
  const bin = workingChrt();
  return bin ? [bin, policy === 'batch' ? '--batch' : '--other', '0'] : [];
}

/** `command args…` under the policy (schedPrefix): the executable to spawn and its arguments. */
export function schedCommand(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): [string, string[]] {
  const [first, ...rest] = [...schedPrefix(env), command, ...args];
  return [first!, rest];
}

/** `fork` options that start a node script under the same policy, with this process's node flags. */
export function schedForkOptions(env: NodeJS.ProcessEnv = process.env): { execPath: string; execArgv: string[] } {
  const [execPath, execArgv] = schedCommand(process.execPath, process.execArgv, env);
  return { execPath, execArgv };
}

/** What `schedPrefix` applies, in words, for logs and results. */
export function schedPolicyInEffect(env: NodeJS.ProcessEnv = process.env): string {
  const policy = schedPolicy(env);
  return workingChrt() ? (policy === 'batch' ? 'SCHED_BATCH' : 'SCHED_OTHER') : 'inherited (no working chrt)';
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
    const [command, args] = schedCommand(process.execPath, [...nodeArgs, script, ...(opts.args ?? [])], env);
    this.child = spawn(command, args, { env, stdio });
    if (fd !== undefined) fs.closeSync(fd);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)));
      // Not started at all (the executable vanished): there will be no 'exit'; 127 as a shell says it.
      this.child.once('error', () => this.child.pid === undefined && resolve(127));
    });
  }

  get running(): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
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
