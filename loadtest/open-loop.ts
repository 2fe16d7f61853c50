/**
 * An open-loop load generator: requests arrive as a Poisson process at a target rate, whatever the
 * system does with them, like independent users would. Each send is scheduled against the ideal
 * arrival clock (exponential inter-arrival times from a seeded PRNG), never after a reply, and its
 * latency is measured from its *scheduled* time, so a stalled generator or server shows up in the
 * latency instead of hiding it ("coordinated omission"). The sender is pluggable, so the same
 * generator drives HTTP and NATS.
 */
import { ErrorCode as NatsErrorCode, NatsError, type NatsConnection } from 'nats';
import { Packr } from 'msgpackr';
import { errors, Pool } from 'undici';
import { mulberry32 } from '../infra/models/mlp.js';
import { ERROR_CODE_HEADER, ERROR_STATUS_HEADER } from '../shared/errors.js';
import { REQUEST_START_HEADER } from '../shared/request-start.js';
import { LatencyRecorder, type LatencySummary } from './latency.js';
import { round1 } from './round.js';

/**
 * What became of one request: a model's answer (`ok`), a refusal the client may retry (`rejected`:
 * HTTP 429/503, or the same codes on NATS), the app's default output (`default`: no model answered
 * in time), no answer within the sender's timeout (`timeout`), anything else (`error`).
 */
export type Outcome = 'ok' | 'rejected' | 'default' | 'error' | 'timeout';
/** Sends one request; `scheduledUnixMs` is when the arrival process meant it to start. */
export type Send = (scheduledUnixMs: number) => Promise<Outcome>;

export interface OpenLoopOptions {
  send: Send;
  /** Target arrival rate, requests per second. */
  rate: number;
  durationS: number;
  /** Arrivals that find this many requests outstanding are not sent (counted as `dropped`). */
  maxOutstanding?: number;
  seed?: number;
  /** How long to wait for outstanding answers after the last send; the rest count as timeouts. */
  drainTimeoutMs?: number;
  /** Busy-wait (setImmediate) only when the next arrival is this close; sleep otherwise. */
  spinMs?: number;
}

export interface OpenLoopResult {
  rate_offered: number;
  duration_s: number;
  /** Arrivals actually sent (not dropped by the generator). */
  sent: number;
  ok: number;
  rejected: number;
  defaults: number;
  /** Every failure, timeouts included. */
  errors: number;
  /** Requests with no answer within the sender's timeout (or the drain timeout); part of `errors`. */
  timeouts: number;
  /** Arrivals not sent because `maxOutstanding` requests were already outstanding. */
  dropped: number;
  /** Model answers per second of the sending window. */
  goodput_qps: number;
  /** Model answers (`ok`) only, from the scheduled send time. */
  latency: LatencySummary;
  /** P99 of every request the system took and answered (ok and default answers), in ms. */
  accepted_p99_ms: number;
  /** How late the generator sent, P99 (scheduled → actual send), in ms: its own health. */
  send_lag_p99_ms: number;
  /** Most requests outstanding at once. */
  max_outstanding: number;
  /** What became of the requests scheduled in each second of the sending window, in order (those still unanswered at the end are only in `timeouts`). */
  per_second: SecondCounts[];
}

/** Outcomes of the requests scheduled in one second (errors include timeouts). */
export interface SecondCounts {
  ok: number;
  rejected: number;
  defaults: number;
  errors: number;
}

/** Runs one open-loop step. */
export function runOpenLoop(opts: OpenLoopOptions): Promise<OpenLoopResult> {
  const { send, rate, durationS } = opts;
  if (!(rate > 0) || !(durationS > 0)) throw new RangeError(`rate and duration must be positive (got ${rate}/s for ${durationS} s)`);
  const maxOutstanding = opts.maxOutstanding ?? 20_000;
  const drainTimeoutMs = opts.drainTimeoutMs ?? 30_000;
  const spinMs = opts.spinMs ?? 0.1;
  const rng = mulberry32(opts.seed ?? 1);
  // Exponential inter-arrival time in ms; 1 - u keeps log() finite.
  const gapMs = (): number => (-Math.log(1 - rng()) * 1000) / rate;

  const okLatency = new LatencyRecorder();
  const acceptedLatency = new LatencyRecorder();
  const sendLag = new LatencyRecorder();
  const counts = { sent: 0, ok: 0, rejected: 0, defaults: 0, errors: 0, timeouts: 0, dropped: 0 };
  const perSecond: SecondCounts[] = Array.from({ length: Math.ceil(durationS) }, () => ({ ok: 0, rejected: 0, defaults: 0, errors: 0 }));
  let outstanding = 0;
  let maxSeen = 0;
  let finished = false;

  return new Promise((resolve) => {
    let onIdle: (() => void) | undefined;
    const record = (outcome: Outcome, scheduled: number): void => {
      if (finished) return;
      outstanding--;
      const us = (performance.now() - scheduled) * 1000;
      const second = perSecond[Math.min(perSecond.length - 1, Math.floor((scheduled - t0) / 1000))];
      switch (outcome) {
        case 'ok': counts.ok++; second.ok++; okLatency.recordUs(us); acceptedLatency.recordUs(us); break;
        case 'default': counts.defaults++; second.defaults++; acceptedLatency.recordUs(us); break;
        case 'rejected': counts.rejected++; second.rejected++; break;
        case 'timeout': counts.timeouts++; counts.errors++; second.errors++; break;
        default: counts.errors++; second.errors++;
      }
      if (outstanding === 0) onIdle?.();
    };
    const fire = (scheduled: number, now: number): void => {
      if (outstanding >= maxOutstanding) {
        counts.dropped++;
        return;
      }
      outstanding++;
      maxSeen = Math.max(maxSeen, outstanding);
      counts.sent++;
      sendLag.recordUs((now - scheduled) * 1000);
      let p: Promise<Outcome>;
      try {
        // Wall-clock time of the scheduled arrival, on the clock the system reads (Date.now()).
        p = send(Date.now() - (now - scheduled));
      } catch {
        p = Promise.resolve('error');
      }
      p.then((o) => record(o, scheduled), () => record('error', scheduled));
    };

    const t0 = performance.now();
    const end = t0 + durationS * 1000;
    let next = t0 + gapMs();

    const summarize = (): void => {
      finished = true;
      const unanswered = outstanding;
      counts.timeouts += unanswered;
      counts.errors += unanswered;
      resolve({
        rate_offered: rate,
        duration_s: durationS,
        ...counts,
        goodput_qps: round1(counts.ok / durationS),
        latency: okLatency.summary(),
        accepted_p99_ms: acceptedLatency.summary().p99_ms,
        send_lag_p99_ms: sendLag.summary().p99_ms,
        max_outstanding: maxSeen,
        per_second: perSecond,
      });
    };

    const drain = (): void => {
      if (outstanding === 0) return summarize();
      const timer = setTimeout(summarize, drainTimeoutMs);
      onIdle = () => {
        clearTimeout(timer);
        summarize();
      };
    };

    const tick = (): void => {
      // Send every arrival whose time has come: after a late wake-up (a loaded machine) the
      // backlog goes out at once and its lateness is charged to the requests' latency.
      const now = performance.now();
      while (next <= now && next < end) {
        fire(next, now);
        next += gapMs();
      }
      if (next >= end) return drain();
      const delay = next - performance.now();
      if (delay <= spinMs) setImmediate(tick);
      else setTimeout(tick, Math.max(1, Math.floor(delay - 0.5)));
    };
    tick();
  });
}

// ---- senders ---------------------------------------------------------------------------------------

export interface HttpSenderOptions {
  /** Keep-alive connections of the pool (requests beyond them wait for a free one). */
  agentSockets?: number;
  /** Time a request may take in all, its wait for a free connection included (default 10 s): a later answer counts as a timeout. */
  timeoutMs?: number;
  /**
   * Stamp each request `X-Request-Start: t=<scheduled Unix ms>`, as a load balancer would, so the
   * system counts the time before it read the request against the SLO (shared/request-start.ts).
   * The sender's `stampStart` property changes it later, on the same warm sockets.
   */
  stampStart?: boolean;
}

/**
 * An HTTP sender: `close` ends it; `release` moves it to fresh connections and closes the old ones once
 * their requests are done (it can go on after).
 */
export type ClosableSend = Send & {
  close(): void;
  release(): void;
  stampStart: boolean;
  /** Called with each default answer's `default_explanation` (why no model answered in time), when set. */
  onDefault?: (explanation: string) => void;
};

/**
 * POSTs the same JSON body each time, over a pool of keep-alive connections (undici: a fraction of
 * node:http's client CPU per request, which matters when the generator shares the machine with the
 * system it loads). 200 with `"default":false` is a model answer, 200 with `"default":true` the
 * default output, 429 and 503 a refusal, anything else an error.
 */
export function httpSender(baseUrl: string, path: string, body: string | (() => string), opts: HttpSenderOptions = {}): ClosableSend {
  const url = new URL(path, baseUrl);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const newPool = (): Pool => new Pool(url.origin, { connections: opts.agentSockets ?? 256, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  let pool = newPool();
  /** Pools replaced by `release`, closing once their requests are done; `close` ends them at once. */
  const closing = new Set<Pool>();
  const fixed = typeof body === 'string' ? Buffer.from(body) : undefined;
  const requestPath = url.pathname + url.search;
  const send = async (scheduledUnixMs: number): Promise<Outcome> => {
    // A body function gives each request its own input (cache workloads).
    const payload = fixed ?? Buffer.from((body as () => string)());
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (sender.stampStart) headers[REQUEST_START_HEADER] = `t=${scheduledUnixMs.toFixed(3)}`;
    const startedMs = performance.now();
    try {
      // undici's timeouts start once the request is on a connection; an answer that came later than
      // the timeout after the send, its wait for a free connection included, is a timeout too. (An
      // AbortSignal.timeout per request would abort it at the time, but cost ~30 µs of CPU per
      // request here, a third of the generator's, and doubled its send lag.)
      const res = await pool.request({ path: requestPath, method: 'POST', headers, body: payload });
      const ok = res.statusCode === 200;
      const text = ok ? await res.body.text() : (await res.body.dump(), '');
      if (performance.now() - startedMs > timeoutMs) return 'timeout';
      if (!ok) return res.statusCode === 429 || res.statusCode === 503 ? 'rejected' : 'error';
      const outcome = text.includes('"default":false') ? 'ok' : text.includes('"default":true') ? 'default' : 'error';
      if (outcome === 'default' && sender.onDefault) sender.onDefault(explanationOf(text));
      return outcome;
    } catch (err) {
      return err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError ? 'timeout' : 'error';
    }
  };
  const sender: ClosableSend = Object.assign(send, {
    close: () => {
      for (const p of [pool, ...closing]) void p.destroy().catch(() => undefined);
      closing.clear();
    },
    // A fresh pool for what follows; the old one closes its sockets once its requests are done.
    release: () => {
      const old = pool;
      pool = newPool();
      closing.add(old);
      void old.close().catch(() => undefined).finally(() => closing.delete(old));
    },
    stampStart: opts.stampStart ?? false,
  });
  return sender;
}

function explanationOf(body: string): string {
  try {
    const why = (JSON.parse(body) as { default_explanation?: unknown }).default_explanation;
    return typeof why === 'string' ? why : 'none given';
  } catch {
    return 'unreadable answer';
  }
}

/** Clipper codes a client should treat as "try again later" (the HTTP 429/503 family). */
const REJECT_CODES = new Set(['CLIPPER_ERR_QUEUE_FULL', 'CLIPPER_ERR_BACKLOGGED', 'CLIPPER_ERR_SERVICE_UNAVAILABLE', 'CLIPPER_ERR_MODEL_UNAVAILABLE']);
const unpackr = new Packr({ useRecords: false });

export interface NatsSenderOptions {
  timeoutMs?: number;
}

/**
 * Requests on a NATS subject with the same payload each time. A reply with a `Clipper-Error` header
 * is a refusal when its code (or status 429/503) says so and an error otherwise; a msgpack answer
 * with `default: true` is the default output.
 */
export function natsSender(nc: NatsConnection, subject: string, payload: Uint8Array | (() => Uint8Array), opts: NatsSenderOptions = {}): Send {
  const timeout = opts.timeoutMs ?? 10_000;
  return async () => {
    try {
      const msg = await nc.request(subject, typeof payload === 'function' ? payload() : payload, { timeout });
      const h = msg.headers;
      if (h) {
        const code = h.get(ERROR_CODE_HEADER);
        const status = h.get(ERROR_STATUS_HEADER);
        if (code || status || h.hasError) return REJECT_CODES.has(code) || status === '429' || status === '503' ? 'rejected' : 'error';
      }
      const body = unpackr.unpack(msg.data) as { default?: unknown } | undefined;
      return body?.default === false ? 'ok' : body?.default === true ? 'default' : 'error';
    } catch (err) {
      if (err instanceof NatsError && err.code === NatsErrorCode.Timeout) return 'timeout';
      if (err instanceof NatsError && err.code === NatsErrorCode.NoResponders) return 'rejected';
      return 'error';
    }
  };
}
