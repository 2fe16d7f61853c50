/** Small node:http helpers shared by the HTTP actors (ingress, admin). */
import type http from 'node:http';
import { ClipperError } from './errors.js';

/** Reads a request body as UTF-8, refusing more than `limit` bytes with CLIPPER_ERR_REQUEST_TOO_LARGE. */
export function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
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
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Sends a JSON answer with its length. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Sends a ClipperError as Clipper's JSON error body; retryable errors carry Retry-After. */
export function sendError(res: http.ServerResponse, err: ClipperError): void {
  sendJson(res, err.status, err.toJson(), err.retryable ? { 'Retry-After': '1' } : undefined);
}
