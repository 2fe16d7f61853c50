/**
 * Starting an embedded `nats-server` (JetStream on) as a child process, for `clipper up` and tests,
 * and probing whether a NATS server with JetStream is already reachable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { connect } from 'nats';
import { sleep } from './actor.js';
import { findExecutable, schedCommand } from './process.js';

export const NATS_INSTALL_HINT =
  'nats-server was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install -y nats-server`; ' +
  'elsewhere: https://docs.nats.io/running-a-nats-service/introduction/installation), ' +
  'set NATS_SERVER_BIN to its path, or point NATS_URL at a running server with JetStream enabled.';

export function findNatsServerBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NATS_SERVER_BIN) return fs.existsSync(env.NATS_SERVER_BIN) ? env.NATS_SERVER_BIN : undefined;
  return findExecutable('nats-server', env);
}

export interface NatsServerOptions {
  /** Directory for the JetStream store (created if missing). */
  storeDir: string;
  /** Port; -1 (default) picks a free one. */
  port?: number;
  host?: string;
  /** Where the server's own log goes; default `<storeDir>/nats-server.log`. */
  logFile?: string;
}

/** A running nats-server child process. */
export class NatsServer {
  private constructor(readonly url: string, readonly port: number, private readonly child: ChildProcess) {}

  static async start(opts: NatsServerOptions): Promise<NatsServer> {
    const bin = findNatsServerBinary();
    if (!bin) throw new Error(NATS_INSTALL_HINT);
    fs.mkdirSync(opts.storeDir, { recursive: true });
    const portsDir = fs.mkdtempSync(path.join(opts.storeDir, 'ports-'));
    const host = opts.host ?? '127.0.0.1';
    const logFile = opts.logFile ?? path.join(opts.storeDir, 'nats-server.log');
    const args = ['-a', host, '-p', String(opts.port ?? -1), '-js', '-sd', opts.storeDir, '--ports_file_dir', portsDir, '-l', logFile];
    // Under the actors' scheduling policy (shared/process.ts, schedPrefix): it is one more stage of every query.
    const [command, commandArgs] = schedCommand(bin, args);
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const started = Date.now();
    try {
      while (Date.now() - started < 10_000) {
        if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}: ${stderr.trim() || `see ${logFile}`}`);
        const file = fs.readdirSync(portsDir).find((f) => f.endsWith('.ports'));
        if (file) {
          const ports = JSON.parse(fs.readFileSync(path.join(portsDir, file), 'utf8')) as { nats: string[] };
          const url = ports.nats[0]!;
          if (await isNatsReachable(url, false)) return new NatsServer(url, Number(new URL(url).port), child);
        }
        await sleep(25);
      }
      throw new Error(`nats-server did not start within 10 s: ${stderr.trim() || `see ${logFile}`}`);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    } finally {
      fs.rmSync(portsDir, { recursive: true, force: true });
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Stops the server (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

/** True when a NATS server answers at `url` (and, if asked, has JetStream enabled). */
export async function isNatsReachable(url: string, needJetStream = true): Promise<boolean> {
  try {
    const nc = await connect({ servers: url.split(','), timeout: 1_000, maxReconnectAttempts: 0, reconnect: false });
    try {
      if (needJetStream) await (await nc.jetstreamManager({ timeout: 1_000 })).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}
