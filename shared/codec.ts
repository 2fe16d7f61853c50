/**
 * Payload codec: msgpack (msgpackr) by default, JSON when a public message says
 * `Content-Type: application/json`. The msgpack side uses only standard types (maps, arrays, bin,
 * str, numbers): no records, no extension types, so any language's msgpack library reads it.
 */
import { C1, Packr } from 'msgpackr';
import { ClipperError } from './errors.js';

const packr = new Packr({ useRecords: false, moreTypes: false, copyBuffers: true, int64AsType: 'number', encodeUndefinedAsNil: true });
/** Decodes binary fields as views into the message instead of copies: only for data not kept after the message. */
const viewUnpackr = new Packr({ useRecords: false, moreTypes: false, copyBuffers: false, int64AsType: 'number' });

export const JSON_CONTENT_TYPE = 'application/json';
export const MSGPACK_CONTENT_TYPE = 'application/msgpack';

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes msgpack, turning any failure into CLIPPER_ERR_PROTO_DECODE. */
export function decode(data: Uint8Array): unknown {
  if (data.byteLength === 0) throw new ClipperError('CLIPPER_ERR_REQUEST_EMPTY');
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch (err) {
    throw new ClipperError('CLIPPER_ERR_PROTO_DECODE', `invalid msgpack: ${(err as Error).message}`);
  }
  // 0xc1 is "never used" in msgpack; msgpackr returns a marker object instead of failing.
  if (value === C1) throw new ClipperError('CLIPPER_ERR_PROTO_DECODE', 'invalid msgpack: byte 0xc1');
  return value;
}

/**
 * Like `decode`, but binary fields are views into `data`, not copies: cheaper, for hot loops (replay)
 * that are done with the value before `data` is reused.
 */
export function decodeView(data: Uint8Array): unknown {
  if (data.byteLength === 0) throw new ClipperError('CLIPPER_ERR_REQUEST_EMPTY');
  let value: unknown;
  try {
    value = viewUnpackr.unpack(data);
  } catch (err) {
    throw new ClipperError('CLIPPER_ERR_PROTO_DECODE', `invalid msgpack: ${(err as Error).message}`);
  }
  if (value === C1) throw new ClipperError('CLIPPER_ERR_PROTO_DECODE', 'invalid msgpack: byte 0xc1');
  return value;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a JSON body, turning any failure into CLIPPER_ERR_PROTO_DECODE. */
export function decodeJson(data: Uint8Array | string): unknown {
  if (data.length === 0) throw new ClipperError('CLIPPER_ERR_REQUEST_EMPTY');
  try {
    return JSON.parse(typeof data === 'string' ? data : utf8.decode(data));
  } catch (err) {
    throw new ClipperError('CLIPPER_ERR_PROTO_DECODE', `invalid JSON: ${(err as Error).message}`);
  }
}

export function encodeJson(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}

/** True when a Content-Type value names JSON (parameters such as charset are ignored). */
export function isJsonContentType(value: string | undefined | null): boolean {
  if (!value) return false;
  return value.split(';')[0]!.trim().toLowerCase() === JSON_CONTENT_TYPE;
}
