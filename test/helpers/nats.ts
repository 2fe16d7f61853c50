/** A real nats-server per suite: random port, JetStream on, temporary store directory. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NatsServer } from '../../shared/nats-server.js';

export interface TestNats {
  server: NatsServer;
  storeDir: string;
  url: string;
}

export async function startTestNats(storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'clipper-test-nats-'))): Promise<TestNats> {
  const server = await NatsServer.start({ storeDir, port: -1 });
  return { server, storeDir, url: server.url };
}

export async function stopTestNats(n: TestNats | undefined, removeStore = true): Promise<void> {
  if (!n) return;
  await n.server.stop();
  if (removeStore) fs.rmSync(n.storeDir, { recursive: true, force: true });
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
