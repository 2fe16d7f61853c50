import { expect } from 'chai';
import fc from 'fast-check';

import { decode, decodeJson, encode, encodeJson, isJsonContentType, JSON_CONTENT_TYPE, MSGPACK_CONTENT_TYPE } from '../../shared/codec.js';
import { fromNumbers, fromStrings, toNumbers, toStrings, type Tensor } from '../../shared/tensor.js';
import { expectClipperError } from '../helpers/expect.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const ascii = (s: string): number[] => [...Buffer.from(s, 'utf8')];


/**
 * A deliberately small, strict msgpack reader that knows only the standard families (nil, bool,
 * ints, floats, str, bin, array, map) and throws on anything else: ext/fixext (0xc7-0xc9,
 * 0xd4-0xd8), the never-used 0xc1, and trailing bytes. Whatever it reads, any msgpack library reads.
 */
function strictDecode(bytes: Uint8Array): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const need = (n: number): void => {
    if (pos + n > bytes.byteLength) throw new Error(`truncated at ${pos}`);
  };
  const str = (n: number): string => {
    need(n);
    const s = Buffer.from(bytes.buffer, bytes.byteOffset + pos, n).toString('utf8');
    pos += n;
    return s;
  };
  const bin = (n: number): Uint8Array => {
    need(n);
    const b = bytes.slice(pos, pos + n);
    pos += n;
    return b;
  };
  const array = (n: number): unknown[] => Array.from({ length: n }, () => read());
  const map = (n: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const k = read();
      if (typeof k !== 'string') throw new Error(`non-string map key at ${pos}`);
      out[k] = read();
    }
    return out;
  };
  const u8 = (): number => { need(1); return view.getUint8(pos++); };
  const u16 = (): number => { need(2); const v = view.getUint16(pos); pos += 2; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos); pos += 4; return v; };
  function read(): unknown {
    const at = pos;
    const b = u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f);
    if ((b & 0xf0) === 0x90) return array(b & 0x0f);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(u8());
      case 0xc5: return bin(u16());
      case 0xc6: return bin(u32());
      case 0xca: { need(4); const v = view.getFloat32(pos); pos += 4; return v; }
      case 0xcb: { need(8); const v = view.getFloat64(pos); pos += 8; return v; }
      case 0xcc: return u8();
      case 0xcd: return u16();
      case 0xce: return u32();
      case 0xcf: { need(8); const v = view.getBigUint64(pos); pos += 8; return Number(v); }
      case 0xd0: { need(1); return view.getInt8(pos++); }
      case 0xd1: { need(2); const v = view.getInt16(pos); pos += 2; return v; }
      case 0xd2: { need(4); const v = view.getInt32(pos); pos += 4; return v; }
      case 0xd3: { need(8); const v = view.getBigInt64(pos); pos += 8; return Number(v); }
      case 0xd9: return str(u8());
      case 0xda: return str(u16());
      case 0xdb: return str(u32());
      case 0xdc: return array(u16());
      case 0xdd: return array(u32());
      case 0xde: return map(u16());
      case 0xdf: return map(u32());
      default: throw new Error(`non-standard msgpack type byte 0x${b.toString(16)} at offset ${at}`);
    }
  }
  const value = read();
  if (pos !== bytes.byteLength) throw new Error(`${bytes.byteLength - pos} trailing bytes`);
  return value;
}

/** Replaces Uint8Array/Buffer values by their hex, so values compare regardless of class. */
function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bin: hex(v) };
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}

const tensorMsg = (): { v: number; query_id: string; deadline_unix_ms: number; input: Tensor } => ({
  v: 1,
  query_id: 'q-1',
  deadline_unix_ms: 1_760_000_000_123,
  input: fromNumbers('FP32', [1, -2.5, 3.25, 0]),
});

describe('codec', () => {
  it('codec - names the JSON and msgpack content types', () => {
    expect(JSON_CONTENT_TYPE).to.equal('application/json');
    expect(MSGPACK_CONTENT_TYPE).to.equal('application/msgpack');
  });

  it('codec - a message with a tensor round-trips; data comes back as a Uint8Array with the same bytes', () => {
    const msg = tensorMsg();
    const back = decode(encode(msg)) as ReturnType<typeof tensorMsg>;
    expect(back.v).to.equal(1);
    expect(back.query_id).to.equal('q-1');
    expect(back.deadline_unix_ms).to.equal(1_760_000_000_123);
    expect(back.input.dtype).to.equal('FP32');
    expect(back.input.shape).to.deep.equal([4]);
    expect(back.input.data).to.be.instanceOf(Uint8Array);
    expect(hex(back.input.data)).to.equal(hex(msg.input.data));
    expect(toNumbers(back.input)).to.deep.equal([1, -2.5, 3.25, 0]);
  });

  it('codec - a BYTES tensor round-trips', () => {
    const t = fromStrings(['héllo', '', '😀'], [3]);
    const back = decode(encode({ output: t })) as { output: Tensor };
    expect(back.output.data).to.be.instanceOf(Uint8Array);
    expect(toStrings(back.output)).to.deep.equal(['héllo', '', '😀']);
  });

  it('codec - encodes only the bytes of a view, not the rest of its buffer', () => {
    const backing = Uint8Array.from({ length: 64 }, (_, i) => i);
    const view = backing.subarray(13, 21); // 8 bytes at an odd offset
    const back = decode(encode({ dtype: 'UINT8', shape: [8], data: view })) as Tensor;
    expect(hex(back.data)).to.equal(hex(view));
    expect(back.data.byteLength).to.equal(8);
  });

  it('codec - decoded bytes are a copy, independent of the input buffer', () => {
    const encoded = encode({ data: Uint8Array.of(1, 2, 3) });
    const back = decode(encoded) as { data: Uint8Array };
    encoded.fill(0);
    expect([...back.data]).to.deep.equal([1, 2, 3]);
  });

  it('codec - a tensor map encodes to exactly the standard msgpack bytes (map, str keys, bin8)', () => {
    const data = Uint8Array.of(0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40); // FP32 [1, 2]
    const expected = [
      // map with 3 entries: msgpackr writes map16 (0xde 0x00 0x03), a standard header, for objects
      0xde, 0x00, 0x03,
      0xa5, ...ascii('dtype'), 0xa4, ...ascii('FP32'),
      0xa5, ...ascii('shape'), 0x91, 0x02,
      0xa4, ...ascii('data'), 0xc4, 0x08, ...data,
    ];
    const encoded = encode({ dtype: 'FP32', shape: [2], data });
    expect(hex(encoded)).to.equal(hex(Uint8Array.from(expected)));
  });

  it('codec - a hand-built fixmap msgpack tensor decodes to the same tensor', () => {
    const data = [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40];
    const bytes = Uint8Array.from([
      0x83,
      0xa5, ...ascii('dtype'), 0xa4, ...ascii('FP32'),
      0xa5, ...ascii('shape'), 0x91, 0x02,
      0xa4, ...ascii('data'), 0xc4, 0x08, ...data,
    ]);
    const t = decode(bytes) as Tensor;
    expect(t.dtype).to.equal('FP32');
    expect(t.shape).to.deep.equal([2]);
    expect(t.data).to.be.instanceOf(Uint8Array);
    expect(toNumbers(t)).to.deep.equal([1, 2]);
  });

  it('codec - protocol messages use only standard msgpack types (no records, no ext)', () => {
    const messages: unknown[] = [
      tensorMsg(),
      { v: 1, batch_id: 'm-1', deadline_unix_ms: Date.now(), inputs: [fromNumbers('FP64', [1, 2]), fromStrings(['a', 'bb'])], reply_to: ['_INBOX.x.1', '_INBOX.x.2'] },
      { v: 1, compute_us: 12.5, outputs: [fromNumbers('INT64', [1, -1]), fromNumbers('INT32', [7])] },
      { v: 1, actor: 'worker', id: 'mlp.1.0', state: 'ready', ts_unix_ms: 1_760_000_000_000, capacity: 1 },
      { v: 1, query_id: 'q', output: 'default text', default: true, default_explanation: 'x'.repeat(300) },
      { big: 2 ** 53 - 1, neg: -(2 ** 40), small: -5, float: 0.1, empty: [], nested: { a: { b: [null, true, false] } } },
      { blob: new Uint8Array(70_000) },
      // the same message twice in a row must not switch to records/shared structures
      { a: 1, b: 2 },
      { a: 1, b: 2 },
    ];
    for (const m of messages) {
      const encoded = encode(m);
      const strict = strictDecode(encoded); // throws on ext types, 0xc1 and trailing bytes
      expect(normalize(strict)).to.deep.equal(normalize(decode(encoded)));
      expect(normalize(strict)).to.deep.equal(normalize(m));
    }
  });

  it('codec - any JSON value encodes to standard msgpack that round-trips', () => {
    // `__proto__` keys are the one exception, renamed on decode (next test)
    const noProtoKey = (v: unknown): boolean => !JSON.stringify(v).includes('"__proto__"');
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }).filter(noProtoKey), (value) => {
        const encoded = encode(value);
        // JSON has no -0; compare through JSON so 0 and -0 are alike
        const viaJson = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
        expect(viaJson(strictDecode(encoded))).to.deep.equal(viaJson(value));
        expect(viaJson(decode(encoded))).to.deep.equal(viaJson(value));
      }),
    );
  });

  it('codec - a map key "__proto__" cannot set the prototype of the decoded object', () => {
    const encoded = encode(new Map<string, unknown>([['__proto__', { polluted: true }], ['a', 1]]));
    const decoded = decode(encoded) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).to.satisfy((p: unknown) => p === Object.prototype || p === null);
    expect(decoded['polluted']).to.equal(undefined);
    expect(decoded['a']).to.equal(1);
  });

  it('codec - an undefined property is not written as a msgpack ext type', () => {
    const encoded = encode({ a: 1, pid: undefined });
    expect(() => strictDecode(encoded)).to.not.throw();
  });

  it('codec - decoding an empty payload throws CLIPPER_ERR_REQUEST_EMPTY', () => {
    expectClipperError(() => decode(new Uint8Array(0)), 'CLIPPER_ERR_REQUEST_EMPTY');
  });

  it('codec - decoding truncated or trailing-garbage msgpack throws CLIPPER_ERR_PROTO_DECODE', () => {
    const cases = [
      [0x92, 0x01], // array of 2 holding 1
      [0xd9], // str8 without its length
      [0xa5, 0x61], // fixstr 5 holding 1 byte
      [0xc4, 0x08, 0x00], // bin8 of 8 holding 1
      [0x01, 0x02], // two values where one is expected
      [...ascii('{"input":[1,2]}')], // JSON sent as msgpack
    ];
    for (const c of cases) {
      const e = expectClipperError(() => decode(Uint8Array.from(c)), 'CLIPPER_ERR_PROTO_DECODE');
      expect(e.message).to.match(/invalid msgpack/);
      expect(e.status).to.equal(400);
    }
  });

  it('codec - decoding a truncated encoding of a message always throws CLIPPER_ERR_PROTO_DECODE', () => {
    const encoded = encode(tensorMsg());
    fc.assert(
      fc.property(fc.integer({ min: 1, max: encoded.byteLength - 1 }), (len) => {
        expectClipperError(() => decode(encoded.slice(0, len)), 'CLIPPER_ERR_PROTO_DECODE');
      }),
    );
  });

  it('codec - decoding the never-used type byte 0xc1 throws CLIPPER_ERR_PROTO_DECODE', () => {
    expectClipperError(() => decode(Uint8Array.of(0xc1)), 'CLIPPER_ERR_PROTO_DECODE');
  });

  it('codec - decodeJson parses strings and UTF-8 bytes', () => {
    expect(decodeJson('{"input":[1,2]}')).to.deep.equal({ input: [1, 2] });
    expect(decodeJson(Buffer.from('{"s":"é😀"}'))).to.deep.equal({ s: 'é😀' });
    expect(decodeJson(new Uint8Array(Buffer.from('[1]')))).to.deep.equal([1]);
  });

  it('codec - decodeJson of an empty string or empty bytes throws CLIPPER_ERR_REQUEST_EMPTY', () => {
    expectClipperError(() => decodeJson(''), 'CLIPPER_ERR_REQUEST_EMPTY');
    expectClipperError(() => decodeJson(new Uint8Array(0)), 'CLIPPER_ERR_REQUEST_EMPTY');
  });

  it('codec - decodeJson of malformed JSON or invalid UTF-8 throws CLIPPER_ERR_PROTO_DECODE', () => {
    for (const bad of ['{', '{"a":}', 'undefined', ' ', "{'a':1}", '[1,]']) {
      const e = expectClipperError(() => decodeJson(bad), 'CLIPPER_ERR_PROTO_DECODE');
      expect(e.message).to.match(/invalid JSON/);
    }
    expectClipperError(() => decodeJson(Uint8Array.of(0x22, 0xff, 0x22)), 'CLIPPER_ERR_PROTO_DECODE');
    expectClipperError(() => decodeJson(encode({ a: 1 })), 'CLIPPER_ERR_PROTO_DECODE');
  });

  it('codec - encodeJson and decodeJson round-trip JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), (value) => {
        expect(decodeJson(encodeJson(value))).to.deep.equal(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('codec - isJsonContentType accepts application/json with any case and parameters', () => {
    for (const ok of ['application/json', 'Application/JSON', 'APPLICATION/JSON', 'application/json; charset=utf-8', 'application/json;charset=UTF-8', '  application/json  ; q=1']) {
      expect(isJsonContentType(ok), ok).to.equal(true);
    }
  });

  it('codec - isJsonContentType refuses other types and missing values', () => {
    for (const no of ['application/msgpack', 'text/json', 'application/jsonx', 'application/vnd.api+json', 'json', '', ';application/json']) {
      expect(isJsonContentType(no), no).to.equal(false);
    }
    expect(isJsonContentType(undefined)).to.equal(false);
    expect(isJsonContentType(null)).to.equal(false);
  });
});
