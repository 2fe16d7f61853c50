/**
 * When did the client (or the load balancer in front of the ingress) start a request? The
 * `X-Request-Start` header says so, as nginx (`t=${msec}`), Heroku's router and the APM agents that
 * read it write it. With it the SLO clock starts when the request started, not when the ingress got
 * round to reading it: time spent in a socket backlog or a busy load balancer counts against the
 * deadline, and a request that arrives with its budget already spent is refused at once, before its
 * body is parsed, instead of being answered late. Pure logic, unit-tested.
 */

/** The header's name (HTTP header lookups in node:http are lower-case; NATS headers keep this case). */
export const REQUEST_START_HEADER = 'X-Request-Start';

/** Stamps off by more than this from the ingress's clock are taken for clock skew and ignored. */
export const MAX_REQUEST_START_SKEW_MS = 60_000;

/**
 * Unix time in ms from a header value (the first, where several were joined with commas):
 * `t=<number>` or a bare number, in seconds (with a fraction, nginx's `$msec`), milliseconds,
 * microseconds or nanoseconds, told apart by magnitude as the APM agents do. Undefined for a missing,
 * malformed or implausible stamp (more than `MAX_REQUEST_START_SKEW_MS` from `nowUnixMs` either way);
 * a stamp slightly in the future (clocks a little apart) counts as now.
 */
export function parseRequestStart(value: string | undefined, nowUnixMs: number): number | undefined {
  if (value === undefined) return undefined;
  // A header sent twice arrives joined ("t=1, t=2" in node:http): the first stamp is the earliest hop's.
  const text = value.split(',')[0]!.trim();
  const n = Number(text.startsWith('t=') ? text.slice(2) : text);
  if (!Number.isFinite(n) || n <= 0) return undefined;
  const ms = n > 1e17 ? n / 1e6 : n > 1e14 ? n / 1e3 : n > 1e11 ? n : n * 1e3;
  if (Math.abs(nowUnixMs - ms) > MAX_REQUEST_START_SKEW_MS) return undefined;
  return Math.min(ms, nowUnixMs);
}
