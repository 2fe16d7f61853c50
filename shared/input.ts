/**
 * Turns a client's `input` (a JSON array, a string, or a tensor map) into the tensor an application
 * expects, checking type, length and finiteness. Clipper's input types map to OIP dtypes:
 * doubles→FP64, floats→FP32, ints→INT32, bytes→UINT8 (base64 string in JSON), strings→BYTES.
 */
import { ClipperError } from './errors.js';
import { checkTensor, elementCount, fromNumbers, fromStrings, INPUT_TYPES, isDType, toNumbers, toTypedArray, type InputType, type Tensor } from './tensor.js';

/** What the ingress needs to know of an application to check its inputs. */
export interface InputSpec {
  inputType: InputType;
  /** Shape of one input; when absent any non-empty 1-D input is accepted. */
  inputShape?: readonly number[];
}

export function parseInput(value: unknown, spec: InputSpec): Tensor {
  const dtype = INPUT_TYPES[spec.inputType];
  let tensor: Tensor;
  if (dtype === 'BYTES') {
    tensor = parseStrings(value);
  } else if (dtype === 'UINT8' && typeof value === 'string') {
    tensor = { dtype, shape: [0], data: Buffer.from(value, 'base64') };
    tensor.shape = [tensor.data.byteLength];
  } else {
    tensor = parseNumbers(value, dtype);
  }
  return conformShape(tensor, spec);
}

function parseStrings(value: unknown): Tensor {
  if (typeof value === 'string') return fromStrings([value], []);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return fromStrings(value as string[]);
  if (isTensorLike(value)) {
    if (value.dtype !== 'BYTES') throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `expected a BYTES tensor, got ${value.dtype}`);
    return tensorFromWire(value);
  }
  throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', 'expected a string or an array of strings');
}

function parseNumbers(value: unknown, dtype: Exclude<Tensor['dtype'], 'BYTES'>): Tensor {
  if (Array.isArray(value)) {
    checkNumbers(value, dtype);
    return fromNumbers(dtype, value as number[]);
  }
  if (isTensorLike(value)) {
    const wire = tensorFromWire(value);
    if (wire.dtype === 'BYTES') throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `expected a numeric tensor, got BYTES`);
    if (wire.dtype === dtype) {
      // Same dtype: the bytes pass through untouched; only floats need a finiteness check.
      if (dtype === 'FP32' || dtype === 'FP64') checkFinite(toTypedArray(wire) as Float32Array | Float64Array);
      return wire;
    }
    const values = toNumbers(wire);
    checkNumbers(values, dtype);
    return fromNumbers(dtype, values, wire.shape);
  }
  throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `expected an array of numbers for ${dtype} input, got ${describe(value)}`);
}

function checkNumbers(values: readonly unknown[], dtype: string): void {
  if (values.length === 0) throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', 'input is empty');
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (typeof x !== 'number') throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `element ${i} is ${describe(x)}, not a number`);
    if (!Number.isFinite(x)) throw new ClipperError('CLIPPER_ERR_INPUT_NOT_FINITE', `element ${i} is ${x}`);
    if (dtype === 'FP32' && !Number.isFinite(Math.fround(x))) throw new ClipperError('CLIPPER_ERR_INPUT_NOT_FINITE', `element ${i} is ${x}, outside the float32 range`);
    if (dtype === 'BOOL' && x !== 0 && x !== 1) throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `element ${i} is ${x}, not a boolean`);
    if ((dtype === 'INT32' || dtype === 'INT64' || dtype === 'UINT8') && !Number.isInteger(x)) {
      throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `element ${i} is ${x}, not an integer`);
    }
    if (dtype === 'UINT8' && (x < 0 || x > 255)) throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `element ${i} is ${x}, not a byte`);
    if (dtype === 'INT32' && (x < -2147483648 || x > 2147483647)) throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `element ${i} is ${x}, outside int32`);
  }
}

function checkFinite(values: Float32Array | Float64Array): void {
  if (values.length === 0) throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', 'input is empty');
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new ClipperError('CLIPPER_ERR_INPUT_NOT_FINITE', `element ${i} is ${values[i]}`);
  }
}

function conformShape(t: Tensor, spec: InputSpec): Tensor {
  const count = elementCount(t.shape);
  if (spec.inputShape) {
    const want = elementCount(spec.inputShape);
    if (count !== want) throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', `expected ${want} values (shape ${JSON.stringify(spec.inputShape)}), got ${count}`);
    return { ...t, shape: [...spec.inputShape] };
  }
  if (count === 0) throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', 'input is empty');
  return t;
}

interface TensorLike { dtype: string; shape: unknown; data: unknown }

function isTensorLike(value: unknown): value is TensorLike {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && 'dtype' in value && 'shape' in value && 'data' in value;
}

/** A tensor from the wire: bytes (msgpack) or a flat array (JSON). */
export function tensorFromWire(value: TensorLike): Tensor {
  const { dtype, shape, data } = value;
  if (!isDType(dtype)) throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0) || shape.length > 8) {
    throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', 'shape must be an array of at most 8 non-negative integers');
  }
  if (data instanceof Uint8Array) return checkTensor({ dtype, shape: shape as number[], data });
  if (Array.isArray(data)) {
    if (dtype === 'BYTES') {
      if (!data.every((d) => typeof d === 'string')) throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', 'BYTES data must be strings in JSON');
      return checkTensor(fromStrings(data as string[], shape as number[]));
    }
    const typed = dtype === 'BOOL' ? data.map((d) => (d === true ? 1 : d === false ? 0 : d)) : data;
    checkNumbers(typed, dtype);
    return checkTensor(fromNumbers(dtype, typed as number[], shape as number[]));
  }
  throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', 'tensor data must be bytes (msgpack bin) or a flat array (JSON)');
}

/** Rows of an `input_batch`, each checked; rows of unequal length are refused. */
export function parseInputBatch(values: readonly unknown[], spec: InputSpec): Tensor[] {
  const rows = values.map((v, i) => {
    try {
      return parseInput(v, spec);
    } catch (err) {
      const e = ClipperError.from(err);
      e.message = `input_batch[${i}]: ${e.message}`;
      throw e;
    }
  });
  if (!spec.inputShape && rows.length > 1) {
    const first = rows[0]!.shape.join(',');
    const bad = rows.findIndex((r) => r.shape.join(',') !== first);
    if (bad >= 0) throw new ClipperError('CLIPPER_ERR_INPUT_BATCH_SHAPE', `input_batch[${bad}] has shape [${rows[bad]!.shape}], input_batch[0] has [${first}]`);
  }
  return rows;
}


function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  return typeof x === 'string' ? `the string ${JSON.stringify(x.length > 20 ? `${x.slice(0, 20)}…` : x)}` : typeof x;
}
