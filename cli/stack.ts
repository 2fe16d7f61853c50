/**
 * Everything on one machine (`clipper up`): NATS (the one at the given URL, one already running on
 * the default port, or an embedded `nats-server -js` child whose store lives in the data folder),
 * then the agent, policy, ingress and admin processes. Each child writes its log to
 * `<dataDir>/logs/<actor>.log`. Stopping stops every child and leaves no orphans.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { sleep } from '../shared/actor.js';
import { isNatsReachable, NatsServer } from '../shared/nats-server.js';
import { actorScript, ChildActor, PROJECT_ROOT, schedPolicyInEffect } from '../shared/process.js';
import { AdminClient } from './admin-client.js';

export interface StackOptions {
  /** NATS to use; when absent, one at nats://127.0.0.1:4222 or an embedded server. */
  natsUrl?: string;
  /** Always start an embedded server (on a free port when 4222 is taken). */
  embedded?: boolean;
  dataDir: string;
  httpPort: number;
  adminPort: number;
  prefix?: string;
  logLevel?: string;
  policyShards?: number;
  /** Extra environment for every actor. */
  env?: Record<string, string>;
  onProgress?: (line: string) => void;
}

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

export class Stack {
  readonly children: ChildActor[] = [];
  private constructor(readonly natsUrl: string, readonly opts: StackOptions, private readonly natsServer?: NatsServer) {}

  get ingressUrl(): string {
    return `http://127.0.0.1:${this.opts.httpPort}`;
  }

  get adminUrl(): string {
    return `http://127.0.0.1:${this.opts.adminPort}`;
  }

  /** The admin token the actors were given (their environment or ours). */
  get adminToken(): string | undefined {
    return this.opts.env?.CLIPPER_ADMIN_TOKEN ?? process.env.CLIPPER_ADMIN_TOKEN;
  }

  get logDir(): string {
    return path.join(this.opts.dataDir, 'logs');
  }

  get embeddedNats(): boolean {
    return this.natsServer !== undefined;
  }

  static async start(opts: StackOptions): Promise<Stack> {
    const say = opts.onProgress ?? (() => undefined);
    // Checks CLIPPER_SCHED_POLICY before anything starts.
    say(`actors run under ${schedPolicyInEffect({ ...process.env, ...opts.env })}`);
    fs.mkdirSync(opts.dataDir, { recursive: true });
    let natsUrl = opts.natsUrl;
    let server: NatsServer | undefined;
    if (natsUrl) {
      if (!(await isNatsReachable(natsUrl))) throw new Error(`no NATS server with JetStream answers at ${natsUrl}`);
      say(`using NATS at ${natsUrl}`);
    } else if (!opts.embedded && (await isNatsReachable(DEFAULT_NATS_URL))) {
      natsUrl = DEFAULT_NATS_URL;
      say(`using NATS at ${natsUrl}`);
    } else {
      const port = (await isPortFree(4222)) ? 4222 : -1;
      server = await NatsServer.start({ storeDir: path.join(opts.dataDir, 'nats'), port });
      natsUrl = server.url;
      say(`started embedded nats-server at ${natsUrl} (store ${path.join(opts.dataDir, 'nats')})`);
    }
    const stack = new Stack(natsUrl, opts, server);
    try {
      await stack.spawnActors();
      await stack.waitReady();
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  private async spawnActors(): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NATS_URL: this.natsUrl,
      CLIPPER_PREFIX: this.opts.prefix ?? 'clipper',
      LOG_LEVEL: this.opts.logLevel ?? 'info',
      CLIPPER_LOG_DIR: this.logDir,
      CLIPPER_BASE_DIR: PROJECT_ROOT,
      CLIPPER_HTTP_PORT: String(this.opts.httpPort),
      CLIPPER_ADMIN_PORT: String(this.opts.adminPort),
      CLIPPER_POLICY_SHARDS: String(this.opts.policyShards ?? 1),
      ...this.opts.env,
    };
    for (const actor of ['agent', 'policy', 'cache', 'ingress', 'admin']) {
      this.children.push(new ChildActor(actor, actorScript(actor), { env, logFile: path.join(this.logDir, `${actor}.log`) }));
    }
  }

  /** Waits until the admin API and the ingress answer. */
  private async waitReady(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    const admin = new AdminClient(this.adminUrl, this.adminToken);
    for (;;) {
      const dead = this.children.find((c) => !c.running);
      if (dead) throw new Error(`${dead.name} exited during start-up; see ${path.join(this.logDir, `${dead.name}.log`)}`);
      const [adminUp, ingressUp] = await Promise.all([
        admin.call('ping').then(() => true, () => false),
        fetch(`${this.ingressUrl}/health`).then((r) => r.ok, () => false),
      ]);
      if (adminUp && ingressUp) return;
      if (Date.now() > until) throw new Error(`actors not ready after ${timeoutMs} ms; see the logs in ${this.logDir}`);
      await sleep(100);
    }
  }

  /** The running child of an actor, by name. */
  child(name: string): ChildActor | undefined {
    return this.children.find((c) => c.name === name);
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => c.stop(10_000)));
    await this.natsServer?.stop();
  }
}

export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** The demo: app `digits` (64 raw pixel values, 0..16) linked to the digits MLP in ONNX. */
export const DEMO = {
  model: {
    model_name: 'digits-mlp',
    model_version: '1',
    input_type: 'floats',
    wrapper: 'onnx',
    model_data_path: path.join(PROJECT_ROOT, 'infra', 'models', 'digits-mlp.onnx'),
    batch_size: -1,
  },
  app: { name: 'digits', input_type: 'floats', input_shape: [64], default_output: '-1', latency_slo_micros: 100_000, policy: 'single' },
} as const;

/**
 * Polls `POST /<app>/predict` with a JSON `body` until the answer comes from a model (not the
 * default output) and returns it; models take a moment to load after they are registered.
 */
export async function waitForModelAnswer(ingressUrl: string, app: string, body: string, timeoutMs = 60_000, hint = ''): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${ingressUrl}/${app}/predict`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })
      .then((r) => r.json() as Promise<Record<string, unknown>>, () => undefined);
    if (res?.default === false) return res;
    if (Date.now() > until) throw new Error(`app ${app} gave no model answer within ${timeoutMs} ms: ${JSON.stringify(res)}${hint}`);
    await sleep(100);
  }
}

/** Registers the demo app (idempotent) and waits until it answers from the model. */
export async function registerDemo(stack: Stack, timeoutMs = 60_000): Promise<void> {
  const admin = new AdminClient(stack.adminUrl, stack.adminToken);
  await admin.ensure('add_model', DEMO.model);
  await admin.ensure('add_app', DEMO.app);
  await admin.call('add_model_links', { app_name: DEMO.app.name, model_names: [DEMO.model.model_name] });
  await waitForModelAnswer(stack.ingressUrl, DEMO.app.name, JSON.stringify({ input: new Array(64).fill(0) }), timeoutMs, `; see ${stack.logDir}`);
}
