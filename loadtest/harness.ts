/** Bench harness: the whole system on a private embedded NATS, plus baseline peers, torn down after. */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdminClient } from '../cli/admin-client.js';
import { connect } from 'nats';
import { freePort, Stack, waitForModelAnswer } from '../cli/stack.js';
import { serviceStats } from '../shared/nats.js';
import { DIST_ROOT, schedForkOptions } from '../shared/process.js';
import { round2 } from './round.js';

/** Runs `fn` over `items` with `concurrency` workers; results in the order of the items. */
export async function pool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

export const progress = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);

export interface BenchSystem {
  stack: Stack;
  admin: AdminClient;
  close(): Promise<void>;
}

export async function startSystem(env: Record<string, string> = {}): Promise<BenchSystem> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'clipper-bench-'));
  progress(`starting nats-server and actors (data in ${dataDir})`);
  const stack = await Stack.start({ embedded: true, dataDir, httpPort: await freePort(), adminPort: await freePort(), logLevel: 'warn', env: { CLIPPER_HTTP_HOST: '127.0.0.1', ...env } });
  return {
    stack,
    admin: new AdminClient(stack.adminUrl),
    async close() {
      await stack.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls until the app answers from a model rather than with its default output. */
export async function waitForApp(system: BenchSystem, app: string, body: string, timeoutMs = 60_000): Promise<void> {
  await waitForModelAnswer(system.stack.ingressUrl, app, body, timeoutMs);
}

export interface Peer {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the baseline peer server (loadtest/peer-server.ts) in its own process, under the actors'
 * scheduling policy (shared/process.ts, schedPrefix), so that the two are compared on the same terms.
 */
export async function startPeer(modelFile: string, wrapper: 'js' | 'onnx', inputLength: number): Promise<Peer> {
  const child: ChildProcess = fork(path.join(DIST_ROOT, 'loadtest', 'peer-server.js'), ['--model', modelFile, '--wrapper', wrapper, '--length', String(inputLength)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...schedForkOptions() });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`peer exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Makes `cleanup` run once, whichever comes first: the returned function (call it in `finally`), or
 * SIGINT/SIGTERM to the bench, after which the process exits (so nothing it started is left behind).
 */
export function cleanupOnce(cleanup: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const run = (): Promise<void> => (done ??= cleanup().catch((err: unknown) => progress(`cleanup failed: ${(err as Error).message}`)));
  const onSignal = (signal: NodeJS.Signals): void => {
    progress(`${signal}: stopping everything this bench started`);
    void run().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    return run();
  };
}

/**
 * The 1-minute load average before a bench starts; warns when other work is running, because on a
 * 2-core machine anything else (a test suite, another bench) skews every figure.
 */
export function loadBeforeBench(): number {
  const load = os.loadavg()[0] ?? 0;
  const cpus = os.cpus().length;
  if (load > 0.5 * cpus) progress(`warning: load average ${load.toFixed(2)} on ${cpus} CPUs before the bench; other processes will skew the figures`);
  return round2(load);
}

/**
 * Share of CPU time the hypervisor gave to others (the `steal` column of /proc/stat) from now until
 * the returned function is called, in percent; null where /proc/stat is not there. On a shared VM a
 * step with a few percent of steal is slower for reasons outside the system measured.
 */
export function stealMeter(): () => number | null {
  const read = (): { steal: number; total: number } | undefined => {
    try {
      const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      return { steal: cpu[7] ?? 0, total: cpu.slice(0, 8).reduce((a, b) => a + b, 0) };
    } catch {
      return undefined;
    }
  };
  const start = read();
  return () => {
    const end = read();
    if (!start || !end || end.total <= start.total) return null;
    return Math.round(((end.steal - start.steal) / (end.total - start.total)) * 1000) / 10;
  };
}

/**
 * How fast this machine runs the bench model now: the mean time of one batch-1 inference of `modelFile`
 * (784 inputs) on one ONNX Runtime thread in this process, after a warm-up, ms. Taken at the start and
 * the end of a bench (machineSpeed), it says whether the machine itself was slower during the run: on
 * a shared VM whose hypervisor reports no steal, this time went from 0.45 ms to 1.13 ms within an hour.
 */
export async function modelSpeedMs(modelFile: string, runs = 200): Promise<number> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(modelFile, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', new Float32Array(784).fill(0.5), [1, 784]) };
    for (let i = 0; i < 20; i++) await session.run(feeds);
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) await session.run(feeds);
    return Math.round(((performance.now() - t0) / runs) * 1000) / 1000;
  } finally {
    await session.release();
  }
}

/** The machine's speed now (modelSpeedMs, shown as progress); `atEnd()` measures it again and gives both, for the result. */
export async function machineSpeed(modelFile: string): Promise<{ atEnd(): Promise<{ start: number; end: number }> }> {
  const start = await modelSpeedMs(modelFile);
  progress(`machine speed: the bench model at batch 1 takes ${start} ms on one thread`);
  return { atEnd: async () => ({ start, end: await modelSpeedMs(modelFile) }) };
}

/** The scheduler's counters (tasks, batches, expired, rejected, re-queued) from its NATS service stats. */
export async function schedulerStats(system: BenchSystem, model: string): Promise<Record<string, unknown> | undefined> {
  const nc = await connect({ servers: system.stack.natsUrl });
  try {
    return await serviceStats<Record<string, unknown>>(nc, 'clipper-scheduler', (md) => md.model === model);
  } finally {
    await nc.close();
  }
}
