/** NATS helpers: connecting, replying with payloads or coded errors, and typed requests. */
import { connect, createInbox, headers as natsHeaders, ErrorCode as NatsErrorCode, NatsError, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { decode, decodeJson, encode, encodeJson, isJsonContentType, JSON_CONTENT_TYPE } from './codec.js';
import { ClipperError, ERROR_CODE_HEADER, ERROR_STATUS_HEADER, ERROR_TEXT_HEADER, SHEDDABLE_HEADER, type ErrorCode } from './errors.js';
import type { Logger } from './logging.js';
import { PROTOCOL_VERSION, type MessageType } from './protocol.js';

export type { NatsConnection, Msg };

/** Connects with endless reconnects and logs the connection's status changes. */
export async function connectNats(url: string, name: string, log: Logger): Promise<NatsConnection> {
  // noAsyncTraces: nats.js otherwise captures a stack trace (new Error()) for every request.
  const nc = await connect({ servers: url.split(','), name, maxReconnectAttempts: -1, reconnectTimeWait: 250, pingInterval: 10_000, noAsyncTraces: true });
  log.info({ server: nc.getServer() }, 'nats connected');
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'pingTimer') continue;
      log.info({ status: s.type, data: typeof s.data === 'string' ? s.data : undefined }, 'nats status');
    }
  })();
  return nc;
}

/** True when the message says its body is JSON. */
export function isJsonMsg(msg: Msg): boolean {
  return isJsonContentType(msg.headers?.get('Content-Type'));
}

/** Decodes a request body (JSON when the header says so, msgpack otherwise) and validates it. */
export function decodeRequest<T>(msg: Msg, type: MessageType<T>): T {
  const raw = isJsonMsg(msg) ? decodeJson(msg.data) : decode(msg.data);
  return type.parse(raw);
}

/** Replies in the requester's encoding (JSON when it sent JSON). */
export function reply(msg: Msg, body: unknown, json = false): void {
  if (!msg.reply) return;
  if (json) {
    const h = natsHeaders();
    h.set('Content-Type', JSON_CONTENT_TYPE);
    msg.respond(encodeJson(body), { headers: h });
  } else {
    msg.respond(encode(body));
  }
}

/** Error headers: nats.js micro's code/description plus our registered code. */
export function errorHeaders(err: ClipperError, json = false): MsgHdrs {
  const h = natsHeaders();
  h.set(ERROR_STATUS_HEADER, String(err.status));
  h.set(ERROR_TEXT_HEADER, err.message.replace(/[\r\n]+/g, ' '));
  h.set(ERROR_CODE_HEADER, err.code);
  if (err.sheddable !== undefined) h.set(SHEDDABLE_HEADER, err.sheddable ? '1' : '0');
  if (json) h.set('Content-Type', JSON_CONTENT_TYPE);
  return h;
}

/** Replies with a coded error; the body repeats it for clients that do not read headers. */
export function replyError(msg: Msg, error: unknown, json = false): void {
  if (!msg.reply) return;
  const err = ClipperError.from(error);
  const body = { v: PROTOCOL_VERSION, ...err.toJson() };
  msg.respond(json ? encodeJson(body) : encode(body), { headers: errorHeaders(err, json) });
}

/** Publishes a coded error to a reply subject that is not a message's own (a task answered by a worker). */
export function publishError(nc: NatsConnection, subject: string, error: unknown): void {
  const err = ClipperError.from(error);
  nc.publish(subject, encode({ v: PROTOCOL_VERSION, ...err.toJson() }), { headers: errorHeaders(err) });
}

/**
 * The stats data (`$SRV.STATS`, first endpoint) of the first instance of a NATS service whose
 * metadata passes `match`: a scheduler's queue counters, the cache's hit counters.
 */
export async function serviceStats<T>(nc: NatsConnection, service: string, match: (metadata: Record<string, string>) => boolean = () => true): Promise<T | undefined> {
  for await (const s of await nc.services.client().stats(service)) {
    if (match(s.metadata ?? {})) return s.endpoints?.[0]?.data as T | undefined;
  }
  return undefined;
}

/** Rebuilds the typed error a reply carries, if it carries one. */
export function errorFromReply(msg: Msg): ClipperError | undefined {
  const h = msg.headers;
  if (!h) return undefined;
  const code = h.get(ERROR_CODE_HEADER);
  const text = h.get(ERROR_TEXT_HEADER);
  if (!code && !text && !h.hasError) return undefined;
  const err = ClipperError.fromWire(code || undefined, text || h.description);
  const sheddable = h.get(SHEDDABLE_HEADER);
  if (sheddable) err.sheddable = sheddable === '1';
  return err;
}

export interface RequestOptions {
  timeoutMs: number;
  /** Code to use when nobody listens on the subject. */
  noResponders?: ErrorCode;
  /** Code to use when the reply does not arrive in time. */
  timeout?: ErrorCode;
}

interface PendingReply {
  resolve(msg: Msg): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Request/reply over one wildcard inbox subscription. nc.request() allocates an Error (with a stack
 * trace) on every call, even a successful one; on the hot path that is a measurable share of the CPU.
 * Replies may come from anyone who is handed the reply subject (a worker answering a task directly).
 */
export class Requester {
  private readonly prefix = `${createInbox()}.`;
  private readonly pending = new Map<string, PendingReply>();
  private readonly sub: Subscription;
  private seq = 0;

  constructor(private readonly nc: NatsConnection) {
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (_err, msg) => this.onReply(msg) });
  }

  /** Publishes `data` with a reply subject; resolves with the first reply, or rejects on timeout / no responders. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Msg> {
    const token = (++this.seq).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new NatsError('timeout', NatsErrorCode.Timeout));
      }, Math.max(1, Math.ceil(timeoutMs)));
      this.pending.set(token, { resolve, reject, timer });
      try {
        this.nc.publish(subject, data, { reply: this.prefix + token });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(token);
        reject(err as Error);
      }
    });
  }

  private onReply(msg: Msg): void {
    const token = msg.subject.slice(this.prefix.length);
    const p = this.pending.get(token);
    if (!p) return; // late or duplicate: the requester already gave up or got its answer
    this.pending.delete(token);
    clearTimeout(p.timer);
    if (msg.data.length === 0 && msg.headers?.code === 503) p.reject(new NatsError('503', NatsErrorCode.NoResponders));
    else p.resolve(msg);
  }

  /** Fails every pending request and stops listening. */
  close(): void {
    this.sub.unsubscribe();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new NatsError('requester closed', NatsErrorCode.ConnectionClosed));
    }
    this.pending.clear();
  }
}

/** A msgpack request whose reply is decoded and validated; errors come back as ClipperError. */
export async function request<T>(requester: Requester, subject: string, body: unknown, type: MessageType<T>, opts: RequestOptions): Promise<T> {
  let msg: Msg;
  try {
    msg = await requester.request(subject, encode(body), opts.timeoutMs);
  } catch (err) {
    throw natsRequestError(err, subject, opts);
  }
  const failure = errorFromReply(msg);
  if (failure) throw failure;
  return type.parse(decode(msg.data));
}

export function natsRequestError(err: unknown, subject: string, opts: Pick<RequestOptions, 'noResponders' | 'timeout'>): ClipperError {
  if (err instanceof NatsError) {
    if (err.code === NatsErrorCode.NoResponders) return new ClipperError(opts.noResponders ?? 'CLIPPER_ERR_SERVICE_UNAVAILABLE', `no responders on ${subject}`);
    if (err.code === NatsErrorCode.Timeout) return new ClipperError(opts.timeout ?? 'CLIPPER_ERR_SERVICE_UNAVAILABLE', `no reply on ${subject} in time`);
  }
  return ClipperError.from(err, 'CLIPPER_ERR_SERVICE_UNAVAILABLE');
}
