/**
 * Tensors on the wire: a plain map `{ dtype, shape, data }` readable from any language. `dtype` is an
 * Open Inference Protocol name, `shape` an int array, `data` the raw little-endian bytes (msgpack
 * bin). BYTES tensors hold each element as a 4-byte little-endian length followed by its bytes (the
 * OIP binary layout). In JSON, `data` is a flat array of numbers (or strings for BYTES).
 */
import os from 'node:os';
import { ClipperError } from './errors.js';

if (os.endianness() !== 'LE') throw new Error('tensor codec assumes a little-endian host');

export const DTYPES = ['BOOL', 'UINT8', 'INT32', 'INT64', 'FP32', 'FP64', 'BYTES'] as const;
export type DType = (typeof DTYPES)[number];

/** A tensor as it travels: raw little-endian bytes. */
export interface Tensor {
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** Clipper's application input types and the tensor dtype each maps to. */
export const INPUT_TYPES = { doubles: 'FP64', floats: 'FP32', ints: 'INT32', bytes: 'UINT8', strings: 'BYTES' } as const;
export type InputType = keyof typeof INPUT_TYPES;

export type NumericArray = Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array;

const WIDTH: Record<Exclude<DType, 'BYTES'>, number> = { BOOL: 1, UINT8: 1, INT32: 4, INT64: 8, FP32: 4, FP64: 8 };

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && (DTYPES as readonly string[]).includes(value);
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Throws CLIPPER_ERR_INPUT_SHAPE unless the bytes hold exactly the elements the shape says. */
export function checkTensor(t: Tensor): Tensor {
  if (!isDType(t.dtype)) throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `unknown dtype ${JSON.stringify(t.dtype)}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', 'shape must be an array of non-negative integers');
  }
  if (!(t.data instanceof Uint8Array)) throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', 'tensor data must be bytes');
  const n = elementCount(t.shape);
  if (t.dtype === 'BYTES') {
    const count = decodeStrings(t.data).length;
    if (count !== n) throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', `shape ${JSON.stringify(t.shape)} needs ${n} elements, data holds ${count}`);
  } else if (t.data.byteLength !== n * WIDTH[t.dtype]) {
    throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', `shape ${JSON.stringify(t.shape)} needs ${n * WIDTH[t.dtype]} bytes of ${t.dtype}, data has ${t.data.byteLength}`);
  }
  return t;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** A tensor over the bytes of a typed array (no copy). */
export function fromTypedArray(dtype: Exclude<DType, 'BYTES'>, values: NumericArray, shape?: number[]): Tensor {
  return { dtype, shape: shape ?? [values.length], data: bytesOf(values) };
}

/** Builds a numeric tensor from plain numbers, converting to `dtype`. */
export function fromNumbers(dtype: Exclude<DType, 'BYTES'>, values: ArrayLike<number>, shape?: number[]): Tensor {
  const out = allocate(dtype, values.length);
  if (out instanceof BigInt64Array) {
    for (let i = 0; i < values.length; i++) out[i] = BigInt(Math.trunc(values[i]!));
  } else {
    for (let i = 0; i < values.length; i++) out[i] = values[i]!;
  }
  return fromTypedArray(dtype, out, shape);
}

function allocate(dtype: Exclude<DType, 'BYTES'>, n: number): NumericArray {
  switch (dtype) {
    case 'FP32': return new Float32Array(n);
    case 'FP64': return new Float64Array(n);
    case 'INT32': return new Int32Array(n);
    case 'INT64': return new BigInt64Array(n);
    case 'UINT8': case 'BOOL': return new Uint8Array(n);
  }
}

/** A typed-array view of a numeric tensor (copied when the bytes are not aligned). */
export function toTypedArray(t: Tensor): NumericArray {
  if (t.dtype === 'BYTES') throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', 'BYTES tensor has no numeric view');
  const width = WIDTH[t.dtype];
  let { data } = t;
  // A plain copy: Buffer#slice would go through Buffer's species constructor, many times slower.
  if (data.byteOffset % width !== 0) data = new Uint8Array(data);
  const n = data.byteLength / width;
  switch (t.dtype) {
    case 'FP32': return new Float32Array(data.buffer, data.byteOffset, n);
    case 'FP64': return new Float64Array(data.buffer, data.byteOffset, n);
    case 'INT32': return new Int32Array(data.buffer, data.byteOffset, n);
    case 'INT64': return new BigInt64Array(data.buffer, data.byteOffset, n);
    case 'UINT8': case 'BOOL': return new Uint8Array(data.buffer, data.byteOffset, n);
  }
}

/** Plain numbers of a numeric tensor (INT64 converted with Number()). */
export function toNumbers(t: Tensor): number[] {
  const view = toTypedArray(t);
  return view instanceof BigInt64Array ? Array.from(view, Number) : Array.from(view);
}

export function fromStrings(values: readonly string[], shape?: number[]): Tensor {
  const parts = values.map((v) => Buffer.from(v, 'utf8'));
  const out = Buffer.allocUnsafe(parts.reduce((sum, p) => sum + 4 + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.writeUInt32LE(p.length, offset);
    p.copy(out, offset + 4);
    offset += 4 + p.length;
  }
  return { dtype: 'BYTES', shape: shape ?? [values.length], data: new Uint8Array(out.buffer, out.byteOffset, out.byteLength) };
}

function decodeStrings(data: Uint8Array): string[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: string[] = [];
  let offset = 0;
  while (offset < buf.length) {
    if (offset + 4 > buf.length) throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', 'BYTES data ends inside a length prefix');
    const len = buf.readUInt32LE(offset);
    if (offset + 4 + len > buf.length) throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', 'BYTES element runs past the end of data');
    out.push(buf.toString('utf8', offset + 4, offset + 4 + len));
    offset += 4 + len;
  }
  return out;
}

export function toStrings(t: Tensor): string[] {
  if (t.dtype !== 'BYTES') throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `${t.dtype} tensor holds no strings`);
  return decodeStrings(t.data);
}

/** The tensor as a JSON value: nested arrays following the shape; a scalar for shape []. */
export function toJsonValue(t: Tensor): unknown {
  const flat: unknown[] = t.dtype === 'BYTES' ? toStrings(t) : toNumbers(t);
  if (t.shape.length === 0) return flat[0];
  const nest = (dim: number, start: number): unknown[] => {
    const size = t.shape[dim]!;
    if (dim === t.shape.length - 1) return flat.slice(start, start + size);
    const stride = elementCount(t.shape.slice(dim + 1));
    return Array.from({ length: size }, (_, i) => nest(dim + 1, start + i * stride));
  };
  return nest(0, 0);
}

/** Concatenates tensors of one dtype and shape along a new leading dimension. */
export function stack(tensors: readonly Tensor[]): Tensor {
  const first = tensors[0];
  if (!first) throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', 'cannot stack an empty batch');
  const rowShape = first.shape.join(',');
  let bytes = 0;
  for (const t of tensors) {
    if (t.dtype !== first.dtype || t.shape.join(',') !== rowShape) {
      throw new ClipperError('CLIPPER_ERR_INPUT_BATCH_SHAPE', `cannot stack ${t.dtype}[${t.shape}] with ${first.dtype}[${first.shape}]`);
    }
    bytes += t.data.byteLength;
  }
  const data = new Uint8Array(bytes);
  let offset = 0;
  for (const t of tensors) {
    data.set(t.data, offset);
    offset += t.data.byteLength;
  }
  return { dtype: first.dtype, shape: [tensors.length, ...first.shape], data };
}

/** Splits a tensor along its leading dimension into rows (views, no copy). */
export function unstack(t: Tensor): Tensor[] {
  const [n, ...rowShape] = t.shape;
  if (n === undefined) throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', 'cannot split a scalar');
  if (t.dtype === 'BYTES') {
    const strings = toStrings(t);
    const per = elementCount(rowShape);
    return Array.from({ length: n }, (_, i) => fromStrings(strings.slice(i * per, (i + 1) * per), rowShape));
  }
  const rowBytes = n === 0 ? 0 : t.data.byteLength / n;
  return Array.from({ length: n }, (_, i) => ({
    dtype: t.dtype,
    shape: rowShape,
    data: t.data.subarray(i * rowBytes, (i + 1) * rowBytes),
  }));
}
