/** A small client of the admin API, for the CLI, the demo setup and tests. */
import { ClipperError } from '../shared/errors.js';

export class AdminClient {
  constructor(readonly baseUrl = 'http://127.0.0.1:1338', private readonly token?: string) {}

  /** POSTs `body` to `/admin/<op>`; a non-2xx answer is thrown as the ClipperError it describes. */
  async call<T = unknown>(op: string, body: unknown = {}): Promise<T> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const res = await fetch(`${this.baseUrl}/admin/${op}`, { method: op === 'ping' ? 'GET' : 'POST', headers, body: op === 'ping' ? undefined : JSON.stringify(body) });
    const json = (await res.json()) as { code?: string; cause?: string };
    if (!res.ok) throw ClipperError.fromWire(json.code, json.cause);
    return json as T;
  }

  /** Like `call`, but an "already exists" answer counts as success (idempotent setup). */
  async ensure(op: 'add_app' | 'add_model', body: unknown): Promise<void> {
    try {
      await this.call(op, body);
    } catch (err) {
      if (!(err instanceof ClipperError) || (err.code !== 'CLIPPER_ERR_APP_EXISTS' && err.code !== 'CLIPPER_ERR_MODEL_EXISTS')) throw err;
    }
  }
}
