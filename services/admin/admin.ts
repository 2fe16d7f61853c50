/**
 * The admin API (port 1338), modelled on Clipper's management frontend: every endpoint is
 * `POST /admin/<operation>` with a JSON body using Clipper's field names (plus `GET /admin/ping`).
 * It writes the registry KV; actors pick changes up from their watches.
 */
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import type { NatsConnection } from 'nats';
import type { Actor } from '../../shared/actor.js';
import { decodeJson, isJsonContentType } from '../../shared/codec.js';
import { readBody, sendError, sendJson } from '../../shared/http.js';
import { ClipperError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { Registry, type AppRecord, type ModelRecord } from '../../shared/registry.js';
import { Subjects } from '../../shared/subjects.js';
import { adminSchemas, type AddAppRequest, type AddModelRequest, type AdminConfig } from './types.js';

export interface AdminDeps {
  nc: NatsConnection;
  log: Logger;
}

const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: true });
const validators = Object.fromEntries(Object.entries(adminSchemas).map(([k, s]) => [k, ajv.compile(s)])) as Record<keyof typeof adminSchemas, ValidateFunction>;
const MAX_BODY_BYTES = 1_048_576;

function parseBody<T>(schema: keyof typeof adminSchemas, raw: unknown): T {
  const body = raw ?? {};
  const validate = validators[schema];
  if (!validate(body)) {
    const e = validate.errors?.[0];
    throw new ClipperError('CLIPPER_ERR_REQUEST_SCHEMA', e ? `${e.instancePath || 'body'} ${e.message}` : 'invalid body');
  }
  return body as T;
}

export class Admin implements Actor {
  private readonly subjects: Subjects;
  private registry?: Registry;
  private server?: http.Server;
  private readonly routes: Record<string, (body: unknown) => Promise<unknown>>;

  constructor(private readonly config: Readonly<AdminConfig>, private readonly deps: AdminDeps) {
    this.subjects = new Subjects(config.prefix);
    const r = () => this.registry!;
    this.routes = {
      add_app: async (raw) => {
        const b = parseBody<AddAppRequest>('add_app', raw);
        const app: AppRecord = {
          name: b.name, input_type: b.input_type, default_output: b.default_output ?? '', latency_slo_micros: b.latency_slo_micros ?? 100_000,
          policy: b.policy ?? 'single', created_unix_ms: Date.now(), ...(b.input_shape ? { input_shape: b.input_shape } : {}),
        };
        for (const m of b.candidate_model_names ?? []) {
          if (!(await r().getCurrentVersion(m))) throw new ClipperError('CLIPPER_ERR_MODEL_NOT_FOUND', m);
        }
        await r().addApp(app);
        if (b.candidate_model_names?.length) await r().changeLinks(b.name, b.candidate_model_names);
        this.deps.log.info({ app: app.name }, 'app added');
        return { success: true, app };
      },
      delete_app: async (raw) => {
        const b = parseBody<{ name: string }>('delete_app', raw);
        await r().deleteApp(b.name);
        this.deps.log.info({ app: b.name }, 'app deleted');
        return { success: true };
      },
      add_model: async (raw) => {
        const b = parseBody<AddModelRequest>('add_model', raw);
        const model: ModelRecord = {
          name: b.model_name, version: b.model_version, input_type: b.input_type, wrapper: b.wrapper, model_data_path: b.model_data_path,
          batch_size: b.batch_size ?? -1, num_replicas: b.num_replicas ?? 1, created_unix_ms: Date.now(),
          ...(b.wrapper_config ? { wrapper_config: b.wrapper_config } : {}), ...(b.labels ? { labels: b.labels } : {}),
          ...(b.batching ? { batching: b.batching } : {}),
          ...(b.cache ? { cache: b.cache } : {}),
        };
        await r().addModel(model);
        this.deps.log.info({ model: model.name, version: model.version }, 'model added');
        return { success: true, model };
      },
      set_model_version: async (raw) => {
        const b = parseBody<{ model_name: string; model_version: string }>('set_model_version', raw);
        await r().setCurrentVersion(b.model_name, b.model_version);
        this.deps.log.info({ model: b.model_name, version: b.model_version }, 'model version set');
        return { success: true };
      },
      set_num_replicas: async (raw) => {
        const b = parseBody<{ model_name: string; model_version?: string; num_replicas: number }>('set_num_replicas', raw);
        const model = await r().setNumReplicas(b.model_name, b.num_replicas, b.model_version);
        this.deps.log.info({ model: model.name, version: model.version, replicas: model.num_replicas }, 'replicas set');
        return { success: true, model };
      },
      add_model_links: async (raw) => {
        const b = parseBody<{ app_name: string; model_names: string[] }>('model_links', raw);
        return { success: true, linked_models: await r().changeLinks(b.app_name, b.model_names) };
      },
      delete_model_links: async (raw) => {
        const b = parseBody<{ app_name: string; model_names: string[] }>('model_links', raw);
        return { success: true, linked_models: await r().changeLinks(b.app_name, b.model_names, true) };
      },
      get_all_applications: async (raw) => {
        const b = parseBody<{ verbose: boolean }>('get_all', raw);
        const apps = await r().listApps();
        if (!b.verbose) return apps.map((a) => a.name);
        return Promise.all(apps.map(async (a) => ({ ...a, linked_models: await r().getLinks(a.name) })));
      },
      get_application: async (raw) => {
        const b = parseBody<{ name: string }>('get_application', raw);
        const app = await r().requireApp(b.name);
        return { ...app, linked_models: await r().getLinks(b.name) };
      },
      get_all_models: async (raw) => {
        const b = parseBody<{ verbose: boolean }>('get_all', raw);
        const models = await r().listModels();
        if (!b.verbose) return models.map((m) => `${m.name}:${m.version}`);
        return Promise.all(models.map(async (m) => ({ ...m, is_current_version: (await r().getCurrentVersion(m.name)) === m.version })));
      },
      get_model: async (raw) => {
        const b = parseBody<{ model_name: string; model_version: string }>('get_model', raw);
        const m = await r().getModel(b.model_name, b.model_version);
        if (!m) throw new ClipperError('CLIPPER_ERR_MODEL_NOT_FOUND', `${b.model_name}:${b.model_version}`);
        return { ...m, is_current_version: (await r().getCurrentVersion(m.name)) === m.version };
      },
      get_linked_models: async (raw) => {
        const b = parseBody<{ app_name: string }>('get_linked_models', raw);
        await r().requireApp(b.app_name);
        return r().getLinks(b.app_name);
      },
    };
    this.routes.delete_application = this.routes.delete_app!;
  }

  get port(): number {
    const addr = this.server?.address();
    return typeof addr === 'object' && addr ? addr.port : this.config.adminPort;
  }

  async start(): Promise<void> {
    this.registry = await Registry.open(this.deps.nc, this.subjects);
    this.server = http.createServer((req, res) => void this.onHttp(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.adminPort, this.config.adminHost, () => resolve());
    });
    this.deps.log.info({ port: this.port }, 'admin listening');
  }

  private authorized(req: http.IncomingMessage): boolean {
    if (!this.config.adminToken) return true;
    const given = Buffer.from(req.headers.authorization ?? '');
    const want = Buffer.from(`Bearer ${this.config.adminToken}`);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  private async onHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0]!;
      const match = /^\/admin\/([a-z_]+)$/.exec(path);
      if (!match) throw new ClipperError('CLIPPER_ERR_ROUTE_NOT_FOUND', `${req.method} ${path}`);
      if (!this.authorized(req)) throw new ClipperError('CLIPPER_ERR_ADMIN_UNAUTHORIZED');
      const op = match[1]!;
      if (op === 'ping') return sendJson(res, 200, { status: 'ok', nats: this.deps.nc.isClosed() ? 'closed' : 'connected' });
      const handler = this.routes[op];
      if (!handler) throw new ClipperError('CLIPPER_ERR_ROUTE_NOT_FOUND', `no admin operation ${op}`);
      if (req.method !== 'POST') throw new ClipperError('CLIPPER_ERR_METHOD_NOT_ALLOWED', `use POST /admin/${op}`);
      const text = (await readBody(req, MAX_BODY_BYTES)).toString('utf8');
      if (text.length > 0 && !isJsonContentType(req.headers['content-type'])) {
        throw new ClipperError('CLIPPER_ERR_REQUEST_CONTENT_TYPE', 'Content-Type must be application/json');
      }
      sendJson(res, 200, await handler(text.length ? decodeJson(text) : {}));
    } catch (err) {
      const e = ClipperError.from(err);
      if (e.status >= 500) this.deps.log.error({ code: e.code, err: e.message, url: req.url }, 'admin request failed');
      sendError(res, e);
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.deps.nc.drain().catch(() => undefined);
  }
}
