/** Starts the whole system as real processes against a suite's own nats-server. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '../../cli/admin-client.js';
import { freePort, Stack, waitForModelAnswer as waitForIngressAnswer } from '../../cli/stack.js';
import { sleep } from '../../shared/actor.js';
import { PROJECT_ROOT } from '../../shared/process.js';
import type { TestNats } from './nats.js';

/** Source folder of the test fixtures (models written for tests). */
export const FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures');
export const fixture = (...p: string[]): string => path.join(FIXTURES, ...p);
export const THIS_DIR = path.dirname(fileURLToPath(import.meta.url));

export interface TestStack {
  stack: Stack;
  admin: AdminClient;
  dataDir: string;
}

export async function startTestStack(nats: TestNats, env: Record<string, string> = {}, dataDir?: string): Promise<TestStack> {
  const dir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'clipper-test-data-'));
  const stack = await Stack.start({
    natsUrl: nats.url, dataDir: dir, httpPort: await freePort(), adminPort: await freePort(),
    logLevel: process.env.TEST_LOG_LEVEL ?? 'info', env: { CLIPPER_HTTP_HOST: '127.0.0.1', CLIPPER_ADMIN_HOST: '127.0.0.1', ...env },
  });
  return { stack, admin: new AdminClient(stack.adminUrl), dataDir: dir };
}

export async function stopTestStack(s: TestStack | undefined, keepData = false): Promise<void> {
  if (!s) return;
  await s.stack.stop();
  if (!keepData) fs.rmSync(s.dataDir, { recursive: true, force: true });
}

/** POSTs JSON to the query API and returns status, headers and parsed body. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = { 'Content-Type': 'application/json' }): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

/**
 * postJson as a well-behaved client: a retryable refusal (503 with `retryable: true`, as on a stall of a
 * busy machine) is sent again after its Retry-After, up to `attempts` times in all.
 */
export async function postJsonRetrying(url: string, body: unknown, attempts = 5): Promise<Awaited<ReturnType<typeof postJson>>> {
  for (let attempt = 1; ; attempt++) {
    const res = await postJson(url, body);
    if (res.status !== 503 || res.body.retryable !== true || attempt >= attempts) return res;
    await sleep(1000 * Number(res.headers.get('retry-after') ?? 1));
  }
}

/** Polls the app until a query is answered by a model (not the default output); returns that answer. */
export function waitForModelAnswer(s: TestStack, app: string, body: unknown, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  return waitForIngressAnswer(s.stack.ingressUrl, app, JSON.stringify(body), timeoutMs);
}

/** Registers one of the test fixture models (`test/fixtures/models/<file>`) as a `doubles` JS model. */
export function addJsModel(s: TestStack, name: string, file: string, extra: Record<string, unknown> = {}, version = '1'): Promise<unknown> {
  return s.admin.call('add_model', { model_name: name, model_version: version, input_type: 'doubles', wrapper: 'js', model_data_path: fixture('models', file), ...extra });
}
