/**
 * The one registry of error codes. Every error that crosses a process boundary carries one of these
 * codes; HTTP answers use `status`, NATS answers carry code and text in service-error headers and the
 * receiver rebuilds a `ClipperError` from them. `retryable` says whether the same request may succeed
 * later. docs/protocol.md lists every code (a test checks it).
 */
export const ERROR_CODES = {
  CLIPPER_ERR_PROTO_VERSION: { status: 400, retryable: false, message: 'unsupported protocol version' },
  CLIPPER_ERR_PROTO_DECODE: { status: 400, retryable: false, message: 'payload could not be decoded' },
  CLIPPER_ERR_REQUEST_EMPTY: { status: 400, retryable: false, message: 'request body is empty' },
  CLIPPER_ERR_REQUEST_CONTENT_TYPE: { status: 415, retryable: false, message: 'unsupported content type' },
  CLIPPER_ERR_REQUEST_TOO_LARGE: { status: 413, retryable: false, message: 'request body is too large' },
  CLIPPER_ERR_REQUEST_SCHEMA: { status: 400, retryable: false, message: 'request does not match its schema' },
  CLIPPER_ERR_INPUT_TYPE: { status: 400, retryable: false, message: 'input has the wrong type' },
  CLIPPER_ERR_INPUT_SHAPE: { status: 400, retryable: false, message: 'input has the wrong length or shape' },
  CLIPPER_ERR_INPUT_BATCH_SHAPE: { status: 400, retryable: false, message: 'inputs of a batch differ in length' },
  CLIPPER_ERR_INPUT_NOT_FINITE: { status: 400, retryable: false, message: 'input contains NaN or Infinity' },
  CLIPPER_ERR_APP_NOT_FOUND: { status: 404, retryable: false, message: 'application not found' },
  CLIPPER_ERR_APP_EXISTS: { status: 409, retryable: false, message: 'application already exists' },
  CLIPPER_ERR_MODEL_NOT_FOUND: { status: 404, retryable: false, message: 'model not found' },
  CLIPPER_ERR_MODEL_EXISTS: { status: 409, retryable: false, message: 'model version already exists' },
  CLIPPER_ERR_VERSION_NOT_FOUND: { status: 404, retryable: false, message: 'model version not found' },
  CLIPPER_ERR_ADMIN_UNAUTHORIZED: { status: 401, retryable: false, message: 'missing or wrong admin token' },
  CLIPPER_ERR_ROUTE_NOT_FOUND: { status: 404, retryable: false, message: 'no such endpoint' },
  CLIPPER_ERR_METHOD_NOT_ALLOWED: { status: 405, retryable: false, message: 'method not allowed' },
  CLIPPER_ERR_QUERY_EXPIRED: { status: 504, retryable: true, message: 'query deadline passed before evaluation' },
  CLIPPER_ERR_QUEUE_FULL: { status: 503, retryable: true, message: 'overloaded: refused before it could miss its deadline' },
  CLIPPER_ERR_BACKLOGGED: { status: 503, retryable: true, message: 'overloaded: the query waited until too late to be served' },
  CLIPPER_ERR_MODEL_UNAVAILABLE: { status: 503, retryable: true, message: 'no replica of the model is available' },
  CLIPPER_ERR_MODEL_FAILED: { status: 500, retryable: false, message: 'model evaluation failed' },
  CLIPPER_ERR_SERVICE_UNAVAILABLE: { status: 503, retryable: true, message: 'service unavailable' },
  CLIPPER_ERR_FEEDBACK_LABEL: { status: 400, retryable: false, message: 'label must be a finite number' },
  CLIPPER_ERR_FEEDBACK_UNAVAILABLE: { status: 503, retryable: true, message: 'feedback could not be stored' },
  CLIPPER_ERR_REPLAY_BUSY: { status: 409, retryable: false, message: 'a replay is already running on this policy shard' },
  CLIPPER_ERR_CONFIG_INVALID: { status: 500, retryable: false, message: 'invalid configuration' },
  CLIPPER_ERR_INTERNAL: { status: 500, retryable: false, message: 'internal error' },
} as const satisfies Record<string, { status: number; retryable: boolean; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** NATS headers that carry an error across a request/reply (the first two are nats.js micro's). */
export const ERROR_TEXT_HEADER = 'Nats-Service-Error';
export const ERROR_STATUS_HEADER = 'Nats-Service-Error-Code';
export const ERROR_CODE_HEADER = 'Clipper-Error';
/** On an overload refusal: `1` when a backlog caused it (less traffic would prevent it), `0` when not (ClipperError.sheddable). */
export const SHEDDABLE_HEADER = 'Clipper-Sheddable';

/**
 * Overload refusals, both retryable: `QUEUE_FULL` before a query is taken on (a full or too slow
 * queue, the edge shedding, a query that waited out its SLO before the ingress read it),
 * `BACKLOGGED` for one taken on that then waited, in a model's queue or on its way there, until too
 * late to be served although the model could have served it in its SLO.
 */
export function isOverloadRefusal(code: string | undefined): boolean {
  return code === 'CLIPPER_ERR_QUEUE_FULL' || code === 'CLIPPER_ERR_BACKLOGGED';
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** A typed error: a registered code plus a human-readable cause. */
export class ClipperError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  /**
   * On an overload refusal, whether a backlog caused it, so that refusing some traffic at the edge
   * would prevent refusals like it (the ingress's load shedder learns from those only); false when the
   * refusing queue was short and the model's latency varying was the cause; undefined when not known.
   */
  sheddable?: boolean;

  constructor(code: ErrorCode, cause?: string) {
    const entry = ERROR_CODES[code];
    super(cause ? `${entry.message}: ${cause}` : entry.message);
    this.name = 'ClipperError';
    this.code = code;
    this.status = entry.status;
    this.retryable = entry.retryable;
  }

  /** The short, constant description of the code (the `error` field of JSON bodies). */
  get title(): string {
    return ERROR_CODES[this.code].message;
  }

  /** JSON error body: Clipper's `{error, cause}` plus our code and retry hint. */
  toJson(): { error: string; code: ErrorCode; cause: string; retryable: boolean } {
    return { error: this.title, code: this.code, cause: this.message, retryable: this.retryable };
  }

  /**
   * An error without a stack trace, for flow control on hot paths (refusals under overload, expired
   * tasks) and for errors that came over the wire, where a local stack says nothing: capturing one
   * costs several microseconds, paid thousands of times a second exactly when the CPU is short.
   */
  static withoutStack(code: ErrorCode, cause?: string): ClipperError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new ClipperError(code, cause);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  /** Wraps anything thrown into a ClipperError, keeping typed ones as they are. */
  static from(err: unknown, fallback: ErrorCode = 'CLIPPER_ERR_INTERNAL'): ClipperError {
    if (err instanceof ClipperError) return err;
    const text = err instanceof Error ? err.message : String(err);
    return new ClipperError(fallback, text);
  }

  /** Rebuilds the error sent by `toHeaders` on the other side of NATS. */
  static fromWire(code: string | undefined, text: string | undefined): ClipperError {
    const known = isErrorCode(code) ? code : 'CLIPPER_ERR_INTERNAL';
    const err = ClipperError.withoutStack(known);
    if (text) err.message = text;
    return err;
  }
}
