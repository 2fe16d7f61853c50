/** Supervised child processes for actors: spawn node scripts, send their output to a log file, stop them. */
import { spawn, type ChildProcess } from 'node:child_process';
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
    this.child = spawn(process.execPath, [...nodeArgs, script, ...(opts.args ?? [])], { env, stdio });
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
