/** Small node:http helpers shared by the HTTP actors (ingress, admin). */
import type http from 'node:http';
import { encode, MSGPACK_CONTENT_TYPE } from './codec.js';
import { ClipperError } from './errors.js';
import { PROTOCOL_VERSION } from './protocol.js';

/** Content types accepted as msgpack bodies. */
const MSGPACK_TYPES = new Set([MSGPACK_CONTENT_TYPE, 'application/x-msgpack', 'application/vnd.msgpack']);

export function isMsgpackContentType(value: string | undefined): boolean {
  return !!value && MSGPACK_TYPES.has(value.split(';')[0]!.trim().toLowerCase());
}

/** Reads a request body, refusing more than `limit` bytes with CLIPPER_ERR_REQUEST_TOO_LARGE. */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    req.resume();
    return Promise.reject(new ClipperError('CLIPPER_ERR_REQUEST_TOO_LARGE', `${declared} bytes, the limit is ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new ClipperError('CLIPPER_ERR_REQUEST_TOO_LARGE', `more than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Sends a JSON answer with its length. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Sends a msgpack answer with its length. */
export function sendMsgpack(res: http.ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const bytes = encode(body);
  res.writeHead(status, { 'Content-Type': MSGPACK_CONTENT_TYPE, 'Content-Length': bytes.byteLength, ...headers });
  res.end(bytes);
}

/** Sends a ClipperError as Clipper's error body (JSON, or msgpack when asked); retryable errors carry Retry-After. */
export function sendError(res: http.ServerResponse, err: ClipperError, msgpack = false): void {
  const headers = err.retryable ? { 'Retry-After': '1' } : undefined;
  if (msgpack) sendMsgpack(res, err.status, { v: PROTOCOL_VERSION, ...err.toJson() }, headers);
  else sendJson(res, err.status, err.toJson(), headers);
}
