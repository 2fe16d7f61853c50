import { expect } from 'chai';
import fc from 'fast-check';

import { ClipperError } from '../../shared/errors.js';
import {
  checkTensor,
  DTYPES,
  elementCount,
  fromNumbers,
  fromStrings,
  fromTypedArray,
  isDType,
  stack,
  toJsonValue,
  toNumbers,
  toStrings,
  toTypedArray,
  unstack,
  type DType,
  type Tensor,
} from '../../shared/tensor.js';
import { expectClipperError } from '../helpers/expect.js';

type NumericDType = Exclude<DType, 'BYTES'>;

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');


/** Copies `bytes` into a fresh buffer at byte offset `offset` (so the view is unaligned when odd). */
function atOffset(bytes: Uint8Array, offset: number): Uint8Array {
  const buf = new ArrayBuffer(bytes.byteLength + offset + 3);
  const view = new Uint8Array(buf, offset, bytes.byteLength);
  view.set(bytes);
  new Uint8Array(buf).fill(0xee, 0, offset); // garbage around the view
  new Uint8Array(buf).fill(0xee, offset + bytes.byteLength);
  return view;
}

/** Values each numeric dtype holds exactly, as plain numbers. */
const exactNumbers: Record<NumericDType, fc.Arbitrary<number>> = {
  FP64: fc.double(),
  FP32: fc.float(),
  INT32: fc.integer({ min: -2147483648, max: 2147483647 }),
  INT64: fc.maxSafeInteger(),
  UINT8: fc.integer({ min: 0, max: 255 }),
  BOOL: fc.integer({ min: 0, max: 1 }),
};

const WIDTH: Record<NumericDType, number> = { BOOL: 1, UINT8: 1, INT32: 4, INT64: 8, FP32: 4, FP64: 8 };
const NUMERIC: NumericDType[] = ['BOOL', 'UINT8', 'INT32', 'INT64', 'FP32', 'FP64'];

/** Object.is per element, so -0 and NaN compare exactly. */
function expectSameNumbers(actual: readonly number[], expected: readonly number[]): void {
  expect(actual).to.have.length(expected.length);
  actual.forEach((x, i) => expect(Object.is(x, expected[i]), `element ${i}: ${x} vs ${expected[i]}`).to.equal(true));
}

function typedOf(dtype: NumericDType, values: number[]): Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array {
  switch (dtype) {
    case 'FP32': return Float32Array.from(values);
    case 'FP64': return Float64Array.from(values);
    case 'INT32': return Int32Array.from(values);
    case 'INT64': return BigInt64Array.from(values, (v) => BigInt(v));
    case 'UINT8': case 'BOOL': return Uint8Array.from(values);
  }
}

describe('tensor', () => {
  it('tensor - knows the OIP dtypes', () => {
    expect([...DTYPES]).to.deep.equal(['BOOL', 'UINT8', 'INT32', 'INT64', 'FP32', 'FP64', 'BYTES']);
    for (const d of DTYPES) expect(isDType(d)).to.equal(true);
    expect(isDType('fp32')).to.equal(false);
    expect(isDType('FP16')).to.equal(false);
    expect(isDType(undefined)).to.equal(false);
  });

  it('tensor - elementCount multiplies the dimensions (1 for a scalar)', () => {
    expect(elementCount([])).to.equal(1);
    expect(elementCount([3])).to.equal(3);
    expect(elementCount([2, 3, 4])).to.equal(24);
    expect(elementCount([2, 0, 4])).to.equal(0);
  });

  for (const dtype of NUMERIC) {
    it(`tensor - fromNumbers/toNumbers round-trips ${dtype} values`, () => {
      fc.assert(
        fc.property(fc.array(exactNumbers[dtype], { maxLength: 40 }), (values) => {
          const t = fromNumbers(dtype, values);
          expect(t.dtype).to.equal(dtype);
          expect(t.shape).to.deep.equal([values.length]);
          expect(t.data.byteLength).to.equal(values.length * WIDTH[dtype]);
          checkTensor(t);
          expectSameNumbers(toNumbers(t), values);
        }),
      );
    });

    it(`tensor - fromTypedArray/toTypedArray round-trips ${dtype} values`, () => {
      fc.assert(
        fc.property(fc.array(exactNumbers[dtype], { maxLength: 40 }), (values) => {
          const typed = typedOf(dtype, values);
          const t = fromTypedArray(dtype, typed);
          expect(t.shape).to.deep.equal([values.length]);
          const back = toTypedArray(t);
          expect(back.constructor).to.equal(typed.constructor);
          expect(hex(new Uint8Array(back.buffer, back.byteOffset, back.byteLength))).to.equal(hex(t.data));
          expectSameNumbers(toNumbers(t), values);
        }),
      );
    });

    it(`tensor - reads ${dtype} data at any byte offset, aligned or not`, () => {
      fc.assert(
        fc.property(fc.array(exactNumbers[dtype], { maxLength: 20 }), fc.integer({ min: 0, max: 15 }), (values, offset) => {
          const original = fromNumbers(dtype, values);
          const data = atOffset(original.data, offset);
          const before = hex(data);
          const t: Tensor = { dtype, shape: [values.length], data };
          checkTensor(t);
          expectSameNumbers(toNumbers(t), values);
          expect(toTypedArray(t).length).to.equal(values.length);
          expect(hex(data), 'input bytes untouched').to.equal(before);
        }),
      );
    });
  }

  it('tensor - INT64 round-trips any int64 through fromTypedArray/toTypedArray', () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 20 }), fc.integer({ min: 0, max: 7 }), (values, offset) => {
        const t = fromTypedArray('INT64', BigInt64Array.from(values));
        const moved: Tensor = { ...t, data: atOffset(t.data, offset) };
        expect(Array.from(toTypedArray(moved) as BigInt64Array)).to.deep.equal(values);
      }),
    );
  });

  it('tensor - fromNumbers converts to the dtype (FP32 rounds, INT64 truncates)', () => {
    expect(toNumbers(fromNumbers('FP32', [0.1]))).to.deep.equal([Math.fround(0.1)]);
    expect(toNumbers(fromNumbers('INT64', [2.9, -2.9]))).to.deep.equal([2, -2]);
    expect(fromNumbers('FP64', [1, 2, 3, 4], [2, 2]).shape).to.deep.equal([2, 2]);
  });

  it('tensor - fromTypedArray shares the bytes of the typed array (no copy)', () => {
    const f = Float32Array.of(1, 2, 3);
    const t = fromTypedArray('FP32', f);
    expect(t.data.buffer).to.equal(f.buffer);
    f[1] = 42;
    expect(toNumbers(t)).to.deep.equal([1, 42, 3]);
  });

  it('tensor - toTypedArray views aligned bytes without copying', () => {
    const t = fromNumbers('INT32', [1, 2, 3]);
    const view = toTypedArray(t);
    expect(view.buffer).to.equal(t.data.buffer);
  });

  it('tensor - toTypedArray and toNumbers refuse BYTES tensors', () => {
    const t = fromStrings(['a']);
    expectClipperError(() => toTypedArray(t), 'CLIPPER_ERR_INPUT_TYPE');
    expectClipperError(() => toNumbers(t), 'CLIPPER_ERR_INPUT_TYPE');
  });

  it('tensor - toStrings refuses numeric tensors', () => {
    expectClipperError(() => toStrings(fromNumbers('FP32', [1])), 'CLIPPER_ERR_INPUT_TYPE', /FP32/);
  });

  it('tensor - fromStrings/toStrings round-trips any unicode strings, empty ones included', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 12 }), { maxLength: 12 }), (values) => {
        const t = fromStrings(values);
        expect(t.dtype).to.equal('BYTES');
        expect(t.shape).to.deep.equal([values.length]);
        checkTensor(t);
        expect(toStrings(t)).to.deep.equal(values);
      }),
    );
  });

  it('tensor - fromStrings handles empty strings, an empty list and multi-byte characters', () => {
    expect(toStrings(fromStrings(['', '', '']))).to.deep.equal(['', '', '']);
    const empty = fromStrings([]);
    expect(empty.shape).to.deep.equal([0]);
    expect(empty.data.byteLength).to.equal(0);
    expect(toStrings(empty)).to.deep.equal([]);
    const t = fromStrings(['é', '😀', '日本']);
    expect(toStrings(t)).to.deep.equal(['é', '😀', '日本']);
    // UTF-8 byte lengths 2, 4, 6 each with a 4-byte prefix
    expect(t.data.byteLength).to.equal(4 + 2 + 4 + 4 + 4 + 6);
  });

  it('tensor - reads strings from BYTES data at an odd byte offset', () => {
    const t = fromStrings(['hello', '', 'wörld']);
    const moved: Tensor = { ...t, data: atOffset(t.data, 3) };
    expect(toStrings(checkTensor(moved))).to.deep.equal(['hello', '', 'wörld']);
  });

  describe('wire layout', () => {
    it('tensor - FP32 1.0 is the little-endian bytes 00 00 80 3f', () => {
      expect(hex(fromNumbers('FP32', [1]).data)).to.equal('0000803f');
    });

    it('tensor - FP64 1.0 is the little-endian bytes 00 00 00 00 00 00 f0 3f', () => {
      expect(hex(fromNumbers('FP64', [1]).data)).to.equal('000000000000f03f');
    });

    it('tensor - INT32 and INT64 are little-endian two\'s complement', () => {
      expect(hex(fromNumbers('INT32', [1, -2]).data)).to.equal('01000000feffffff');
      expect(hex(fromNumbers('INT64', [258]).data)).to.equal('0201000000000000');
      expect(hex(fromNumbers('INT64', [-1]).data)).to.equal('ffffffffffffffff');
    });

    it('tensor - UINT8 and BOOL take one byte per element', () => {
      expect(hex(fromNumbers('UINT8', [0, 127, 255]).data)).to.equal('007fff');
      expect(hex(fromNumbers('BOOL', [1, 0]).data)).to.equal('0100');
    });

    it('tensor - BYTES elements are a 4-byte little-endian length then the UTF-8 bytes', () => {
      expect(hex(fromStrings(['hi', '']).data)).to.equal('02000000686900000000');
      expect(hex(fromStrings(['é']).data)).to.equal('02000000c3a9');
    });

    it('tensor - decodes little-endian bytes written by hand', () => {
      const t: Tensor = { dtype: 'FP32', shape: [2], data: Uint8Array.of(0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0) };
      expect(toNumbers(t)).to.deep.equal([1, -2]);
      const s: Tensor = { dtype: 'BYTES', shape: [1], data: Uint8Array.of(3, 0, 0, 0, 0x61, 0x62, 0x63) };
      expect(toStrings(s)).to.deep.equal(['abc']);
    });
  });

  describe('toJsonValue', () => {
    it('tensor - toJsonValue of shape [] is a scalar', () => {
      expect(toJsonValue(fromNumbers('FP64', [2.5], []))).to.equal(2.5);
      expect(toJsonValue(fromStrings(['x'], []))).to.equal('x');
    });

    it('tensor - toJsonValue of shape [3] is a flat array', () => {
      expect(toJsonValue(fromNumbers('INT32', [1, 2, 3]))).to.deep.equal([1, 2, 3]);
      expect(toJsonValue(fromStrings(['a', 'b', 'c']))).to.deep.equal(['a', 'b', 'c']);
    });

    it('tensor - toJsonValue of shape [2,3] nests rows in row-major order', () => {
      expect(toJsonValue(fromNumbers('FP64', [1, 2, 3, 4, 5, 6], [2, 3]))).to.deep.equal([[1, 2, 3], [4, 5, 6]]);
      expect(toJsonValue(fromStrings(['a', 'b', 'c', 'd', 'e', 'f'], [2, 3]))).to.deep.equal([['a', 'b', 'c'], ['d', 'e', 'f']]);
    });

    it('tensor - toJsonValue of shape [2,1,2] nests three levels', () => {
      expect(toJsonValue(fromNumbers('UINT8', [1, 2, 3, 4], [2, 1, 2]))).to.deep.equal([[[1, 2]], [[3, 4]]]);
    });

    it('tensor - toJsonValue handles zero-sized dimensions', () => {
      expect(toJsonValue(fromNumbers('FP32', [], [0]))).to.deep.equal([]);
      expect(toJsonValue(fromNumbers('FP32', [], [2, 0]))).to.deep.equal([[], []]);
    });

    it('tensor - toJsonValue converts INT64 to numbers', () => {
      expect(toJsonValue(fromNumbers('INT64', [1, -5]))).to.deep.equal([1, -5]);
    });

    it('tensor - toJsonValue flattened equals toNumbers for any 2-D shape', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), (rows, cols) => {
          const values = Array.from({ length: rows * cols }, (_, i) => i);
          const nested = toJsonValue(fromNumbers('INT32', values, [rows, cols])) as number[][];
          expect(nested).to.have.length(rows);
          for (const r of nested) expect(r).to.have.length(cols);
          expect(nested.flat()).to.deep.equal(values);
        }),
      );
    });
  });

  describe('stack and unstack', () => {
    const rowShape = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 });

    it('tensor - unstack(stack(rows)) gives back the rows, for every numeric dtype', () => {
      fc.assert(
        fc.property(fc.constantFrom(...NUMERIC), rowShape, fc.integer({ min: 1, max: 6 }), fc.integer(), (dtype, shape, n, seed) => {
          const per = elementCount(shape) * WIDTH[dtype];
          const rows: Tensor[] = Array.from({ length: n }, (_, i) => ({
            dtype,
            shape,
            data: Uint8Array.from({ length: per }, (_, j) => (seed + i * 31 + j * 7) & 0xff),
          }));
          const stacked = stack(rows);
          expect(stacked.dtype).to.equal(dtype);
          expect(stacked.shape).to.deep.equal([n, ...shape]);
          checkTensor(stacked);
          const back = unstack(stacked);
          expect(back).to.have.length(n);
          back.forEach((r, i) => {
            expect(r.dtype).to.equal(dtype);
            expect(r.shape).to.deep.equal(shape);
            expect(hex(r.data)).to.equal(hex(rows[i]!.data));
          });
        }),
      );
    });

    it('tensor - stack(unstack(t)) gives back t for BYTES tensors', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 3 }), fc.array(fc.string({ unit: 'binary', maxLength: 5 }), { minLength: 15, maxLength: 15 }), (n, per, pool) => {
          const values = pool.slice(0, n * per);
          const t = fromStrings(values, [n, per]);
          const rows = unstack(t);
          expect(rows).to.have.length(n);
          rows.forEach((r, i) => expect(toStrings(r)).to.deep.equal(values.slice(i * per, (i + 1) * per)));
          const again = stack(rows);
          expect(again.shape).to.deep.equal([n, per]);
          expect(toStrings(again)).to.deep.equal(values);
        }),
      );
    });

    it('tensor - unstack of a [0, ...] tensor is empty', () => {
      expect(unstack(fromNumbers('FP32', [], [0, 3]))).to.deep.equal([]);
      expect(unstack(fromStrings([], [0]))).to.deep.equal([]);
    });

    it('tensor - unstack returns views over the original bytes', () => {
      const t = fromNumbers('FP32', [1, 2, 3, 4], [2, 2]);
      const [, second] = unstack(t);
      expect(second!.data.buffer).to.equal(t.data.buffer);
      expect(toNumbers(second!)).to.deep.equal([3, 4]);
    });

    it('tensor - stack refuses an empty batch', () => {
      expectClipperError(() => stack([]), 'CLIPPER_ERR_INPUT_SHAPE', /empty/);
    });

    it('tensor - stack refuses rows of different dtype or shape', () => {
      expectClipperError(() => stack([fromNumbers('FP32', [1, 2]), fromNumbers('FP64', [1, 2])]), 'CLIPPER_ERR_INPUT_BATCH_SHAPE');
      expectClipperError(() => stack([fromNumbers('FP32', [1, 2]), fromNumbers('FP32', [1, 2, 3])]), 'CLIPPER_ERR_INPUT_BATCH_SHAPE');
      expectClipperError(() => stack([fromNumbers('FP32', [1, 2], [1, 2]), fromNumbers('FP32', [1, 2], [2, 1])]), 'CLIPPER_ERR_INPUT_BATCH_SHAPE');
      expectClipperError(() => stack([fromNumbers('FP32', new Array(12).fill(0), [1, 12]), fromNumbers('FP32', new Array(12).fill(0), [12, 1])]), 'CLIPPER_ERR_INPUT_BATCH_SHAPE');
    });

    it('tensor - unstack refuses a scalar', () => {
      expectClipperError(() => unstack(fromNumbers('FP32', [1], [])), 'CLIPPER_ERR_INPUT_SHAPE', /scalar/);
    });
  });

  describe('checkTensor', () => {
    it('tensor - checkTensor accepts well-formed tensors and returns them', () => {
      const t = fromNumbers('FP64', [1, 2, 3, 4, 5, 6], [2, 3]);
      expect(checkTensor(t)).to.equal(t);
      checkTensor(fromNumbers('FP32', [], [0]));
      checkTensor(fromNumbers('INT32', [7], []));
      checkTensor(fromStrings(['a', 'b'], [2, 1]));
    });

    it('tensor - checkTensor rejects a byte length that does not match the shape', () => {
      for (const dtype of NUMERIC) {
        const n = 3;
        for (const len of [0, n * WIDTH[dtype] - 1, n * WIDTH[dtype] + 1]) {
          expectClipperError(() => checkTensor({ dtype, shape: [n], data: new Uint8Array(len) }), 'CLIPPER_ERR_INPUT_SHAPE', new RegExp(`data has ${len}`));
        }
      }
      expectClipperError(() => checkTensor({ dtype: 'FP32', shape: [2, 2], data: new Uint8Array(8) }), 'CLIPPER_ERR_INPUT_SHAPE');
    });

    it('tensor - checkTensor rejects bad shapes', () => {
      const data = new Uint8Array(4);
      for (const shape of [[-1], [1.5], [NaN], ['1'], null, 'x', [Infinity]] as unknown[]) {
        expectClipperError(() => checkTensor({ dtype: 'FP32', shape, data } as Tensor), 'CLIPPER_ERR_INPUT_SHAPE', /shape/);
      }
    });

    it('tensor - checkTensor rejects unknown dtypes and non-byte data', () => {
      expectClipperError(() => checkTensor({ dtype: 'FP16', shape: [1], data: new Uint8Array(2) } as unknown as Tensor), 'CLIPPER_ERR_INPUT_TYPE', /FP16/);
      expectClipperError(() => checkTensor({ dtype: 'FP32', shape: [1], data: [1] } as unknown as Tensor), 'CLIPPER_ERR_INPUT_TYPE', /bytes/);
      expectClipperError(() => checkTensor({ dtype: 'FP32', shape: [1], data: Float32Array.of(1) } as unknown as Tensor), 'CLIPPER_ERR_INPUT_TYPE');
    });

    it('tensor - checkTensor rejects BYTES data that ends inside a length prefix', () => {
      expectClipperError(() => checkTensor({ dtype: 'BYTES', shape: [1], data: Uint8Array.of(1, 0) }), 'CLIPPER_ERR_INPUT_SHAPE', /length prefix/);
      const good = fromStrings(['ab']);
      const plus = new Uint8Array(good.data.byteLength + 3);
      plus.set(good.data);
      expectClipperError(() => checkTensor({ dtype: 'BYTES', shape: [2], data: plus }), 'CLIPPER_ERR_INPUT_SHAPE', /length prefix/);
    });

    it('tensor - checkTensor rejects BYTES data whose element runs past the end', () => {
      expectClipperError(() => checkTensor({ dtype: 'BYTES', shape: [1], data: Uint8Array.of(5, 0, 0, 0, 0x61, 0x62) }), 'CLIPPER_ERR_INPUT_SHAPE', /past the end/);
      fc.assert(
        fc.property(fc.array(fc.string({ maxLength: 6 }), { minLength: 1, maxLength: 5 }), fc.nat(), (values, cut) => {
          const t = fromStrings(values);
          const len = cut % t.data.byteLength; // strictly shorter, at least one byte cut off
          const truncated: Tensor = { ...t, data: t.data.slice(0, len) };
          expect(() => checkTensor(truncated)).to.throw(ClipperError);
        }),
      );
    });

    it('tensor - checkTensor rejects BYTES data with a different element count', () => {
      expectClipperError(() => checkTensor({ ...fromStrings(['a', 'b']), shape: [3] }), 'CLIPPER_ERR_INPUT_SHAPE', /holds 2/);
      expectClipperError(() => checkTensor({ ...fromStrings(['a', 'b']), shape: [] }), 'CLIPPER_ERR_INPUT_SHAPE');
    });
  });
});
