/** Bench harness: the whole system on a private embedded NATS, plus baseline peers, torn down after. */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdminClient } from '../cli/admin-client.js';
import { freePort, Stack } from '../cli/stack.js';
import { sleep } from '../shared/actor.js';
import { DIST_ROOT } from '../shared/process.js';

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
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${system.stack.ingressUrl}/${app}/predict`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }).then((r) => r.json() as Promise<{ default?: boolean }>, () => undefined);
    if (res?.default === false) return;
    if (Date.now() > until) throw new Error(`app ${app} did not answer from its model in ${timeoutMs} ms`);
    await sleep(100);
  }
}

export interface Peer {
  url: string;
  close(): Promise<void>;
}

/** Starts the baseline peer server (loadtest/peer-server.ts) in its own process. */
export async function startPeer(modelFile: string, wrapper: 'js' | 'onnx', inputLength: number): Promise<Peer> {
  const child: ChildProcess = fork(path.join(DIST_ROOT, 'loadtest', 'peer-server.js'), ['--model', modelFile, '--wrapper', wrapper, '--length', String(inputLength)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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
