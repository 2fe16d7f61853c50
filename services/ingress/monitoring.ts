/**
 * The ingress's observing endpoints on its HTTP port:
 *
 *   GET /metrics            Prometheus text: this ingress's metrics and every actor's (IngressMetrics)
 *   GET /status             StatusSnapshot as JSON (what `clipper status` prints)
 *   GET /dashboard          the live dashboard (static HTML and JS from services/ingress/dashboard/)
 *   GET /dashboard/events   server-sent events: a StatusSnapshot every second while someone watches
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { ClipperError } from '../../shared/errors.js';
import { sendJson } from '../../shared/http.js';
import type { Logger } from '../../shared/logging.js';
import { PROJECT_ROOT } from '../../shared/process.js';
import type { RegistryView } from '../../shared/registry.js';
import type { ClusterStats } from './cluster-stats.js';
import type { IngressMetrics } from './ingress-metrics.js';
import { buildStatusSnapshot, type StatusSnapshot } from './status-snapshot.js';

/** The dashboard's files; no build step, so they are served from the source tree. */
export const DASHBOARD_DIR = path.join(PROJECT_ROOT, 'services', 'ingress', 'dashboard');
const ASSETS: Record<string, { file: string; type: string }> = {
  '/dashboard': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

export interface MonitoringDeps {
  view: RegistryView;
  metrics: IngressMetrics;
  cluster: ClusterStats;
  log: Logger;
}

export class MonitoringEndpoints {
  private readonly watchers = new Set<http.ServerResponse>();
  private readonly assets = new Map<string, Buffer>();
  private ticker?: NodeJS.Timeout;

  constructor(private readonly deps: MonitoringDeps, private readonly tickMs = 1_000) {}

  /** True for the paths served here. */
  static handles(urlPath: string): boolean {
    return urlPath === '/metrics' || urlPath === '/status' || urlPath === '/dashboard' || urlPath.startsWith('/dashboard/');
  }

  snapshot(): StatusSnapshot {
    return buildStatusSnapshot(this.deps.view, this.deps.metrics.recent, this.deps.cluster);
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse, urlPath: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new ClipperError('CLIPPER_ERR_METHOD_NOT_ALLOWED', `${req.method} ${urlPath}: use GET`);
    if (urlPath === '/metrics') {
      const text = await this.deps.metrics.exposition(this.deps.cluster);
      res.writeHead(200, { 'Content-Type': this.deps.metrics.contentType, 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    } else if (urlPath === '/status') {
      sendJson(res, 200, this.snapshot());
    } else if (urlPath === '/dashboard/events') {
      this.watch(req, res);
    } else {
      const asset = ASSETS[urlPath];
      if (!asset) throw new ClipperError('CLIPPER_ERR_ROUTE_NOT_FOUND', `GET ${urlPath}`);
      const body = this.asset(asset.file);
      res.writeHead(200, { 'Content-Type': asset.type, 'Content-Length': body.byteLength, 'Cache-Control': 'no-cache' });
      res.end(body);
    }
  }

  private asset(file: string): Buffer {
    let body = this.assets.get(file);
    if (!body) this.assets.set(file, (body = fs.readFileSync(path.join(DASHBOARD_DIR, file))));
    return body;
  }

  /** Server-sent events: a snapshot now, then one per tick until the client goes away. */
  private watch(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write(`retry: 2000\n\n`);
    this.watchers.add(res);
    req.on('close', () => {
      this.watchers.delete(res);
      if (this.watchers.size === 0) {
        clearInterval(this.ticker);
        this.ticker = undefined;
      }
    });
    this.send([res]);
    this.ticker ??= setInterval(() => this.send(this.watchers), this.tickMs);
  }

  private send(to: Iterable<http.ServerResponse>): void {
    let data: string;
    try {
      data = `data: ${JSON.stringify(this.snapshot())}\n\n`;
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'dashboard snapshot failed');
      return;
    }
    for (const res of to) res.write(data);
  }

  /** Ends every event stream. */
  stop(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    for (const res of this.watchers) res.end();
    this.watchers.clear();
  }
}
