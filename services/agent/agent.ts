/**
 * The agent: one per host. It watches the registry and starts and stops scheduler and worker
 * processes so that what runs matches what the registry says; a child that crashes is restarted
 * with exponential backoff.
 */
import path from 'node:path';
import type { NatsConnection, Service } from 'nats';
import type { Actor } from '../../shared/actor.js';
import type { Logger } from '../../shared/logging.js';
import { actorScript, ChildActor, schedPolicyInEffect } from '../../shared/process.js';
import { openRegistryBucket, RegistryView } from '../../shared/registry.js';
import { Subjects } from '../../shared/subjects.js';
import { encode } from '../../shared/codec.js';
import { desiredProcesses } from './desired.js';
import type { AgentConfig, DesiredProcess } from './types.js';

export interface AgentDeps {
  nc: NatsConnection;
  log: Logger;
}

interface Managed {
  spec: DesiredProcess;
  child?: ChildActor;
  restarts: number;
  startedUnixMs: number;
  restartTimer?: NodeJS.Timeout;
}

const MAX_BACKOFF_MS = 30_000;

export class Agent implements Actor {
  private readonly subjects: Subjects;
  private readonly view: RegistryView;
  private readonly managed = new Map<string, Managed>();
  private service?: Service;
  private reconcileTimer?: NodeJS.Timeout;
  private stopping = false;

  constructor(private readonly config: Readonly<AgentConfig>, private readonly deps: AgentDeps) {
    this.subjects = new Subjects(config.prefix);
    this.view = new RegistryView(deps.log);
  }

  async start(): Promise<void> {
    // A bad CLIPPER_SCHED_POLICY fails the start, not the first launch a reconcile makes later.
    this.deps.log.info({ schedPolicy: schedPolicyInEffect() }, 'schedulers and workers will run under this scheduling policy');
    await this.view.start(await openRegistryBucket(this.deps.nc, this.subjects));
    this.view.onChange(() => this.scheduleReconcile());
    this.service = await this.deps.nc.services.add({ name: 'clipper-agent', version: '0.1.0', metadata: { host: this.config.host } });
    this.service.addEndpoint('processes', {
      subject: `${this.subjects.prefix}.agent.${this.config.host}.processes`,
      handler: (_err, msg) => msg.respond(encode(this.processes())),
    });
    this.reconcile();
  }

  /** The children and their state, for status tools. */
  processes(): { key: string; pid?: number; running: boolean; restarts: number }[] {
    return [...this.managed.values()].map((m) => ({ key: m.spec.key, pid: m.child?.child.pid, running: m.child?.running ?? false, restarts: m.restarts }));
  }

  private scheduleReconcile(): void {
    clearTimeout(this.reconcileTimer);
    this.reconcileTimer = setTimeout(() => this.reconcile(), 50);
  }

  private reconcile(): void {
    if (this.stopping) return;
    const desired = new Map(desiredProcesses(this.view.deployed()).map((d) => [d.key, d]));
    for (const spec of desired.values()) {
      if (!this.managed.has(spec.key)) {
        const m: Managed = { spec, restarts: 0, startedUnixMs: 0 };
        this.managed.set(spec.key, m);
        this.launch(m);
      }
    }
    for (const [key, m] of this.managed) {
      if (!desired.has(key)) {
        this.managed.delete(key);
        clearTimeout(m.restartTimer);
        this.deps.log.info({ process: key }, 'stopping process no longer wanted');
        void m.child?.stop();
      }
    }
  }

  private launch(m: Managed): void {
    const { spec } = m;
    const env = {
      ...process.env,
      NATS_URL: this.config.natsUrl,
      CLIPPER_PREFIX: this.config.prefix,
      LOG_LEVEL: this.config.logLevel,
      CLIPPER_BASE_DIR: this.config.baseDir,
    };
    const logFile = this.config.logDir ? path.join(this.config.logDir, `${spec.key}.log`) : undefined;
    const child = new ChildActor(spec.key, actorScript(spec.actor), { args: spec.args, env, logFile });
    m.child = child;
    m.startedUnixMs = Date.now();
    this.deps.log.info({ process: spec.key, pid: child.child.pid, logFile }, 'process started');
    void child.exited.then((code) => {
      if (this.stopping || this.managed.get(spec.key) !== m || m.child !== child) return;
      if (Date.now() - m.startedUnixMs > 60_000) m.restarts = 0;
      const delay = Math.min(MAX_BACKOFF_MS, this.config.restartBackoffMs * 2 ** m.restarts);
      m.restarts++;
      this.deps.log.warn({ process: spec.key, code, restartInMs: delay, restarts: m.restarts }, 'process exited, restarting');
      m.restartTimer = setTimeout(() => {
        if (!this.stopping && this.managed.get(spec.key) === m) this.launch(m);
      }, delay);
    });
  }

  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    clearTimeout(this.reconcileTimer);
    await this.service?.stop().catch(() => undefined);
    const all = [...this.managed.values()];
    for (const m of all) clearTimeout(m.restartTimer);
    await Promise.all(all.map((m) => m.child?.stop(graceMs)));
    this.view.stop();
    await this.deps.nc.drain().catch(() => undefined);
  }
}
