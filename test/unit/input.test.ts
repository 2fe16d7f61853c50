import { expect } from 'chai';
import fc from 'fast-check';

import { ClipperError } from '../../shared/errors.js';
import { parseInput, parseInputBatch, tensorFromWire, type InputSpec } from '../../shared/input.js';
import { fromNumbers, fromStrings, toNumbers, toStrings, type Tensor } from '../../shared/tensor.js';

function thrown(fn: () => unknown): ClipperError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ClipperError);
    return err as ClipperError;
  }
  throw new Error('expected a throw');
}

function expectCode(fn: () => unknown, code: string, pattern?: RegExp): void {
  const e = thrown(fn);
  expect(e.code, e.message).to.equal(code);
  if (pattern) expect(e.message).to.match(pattern);
}

const doubles: InputSpec = { inputType: 'doubles' };
const floats: InputSpec = { inputType: 'floats' };
const ints: InputSpec = { inputType: 'ints' };
const bytes: InputSpec = { inputType: 'bytes' };
const strings: InputSpec = { inputType: 'strings' };

describe('input', () => {
  describe('input types', () => {
    it('input - doubles become an FP64 tensor', () => {
      const t = parseInput([1.5, -2, 1e300], doubles);
      expect(t.dtype).to.equal('FP64');
      expect(t.shape).to.deep.equal([3]);
      expect(toNumbers(t)).to.deep.equal([1.5, -2, 1e300]);
    });

    it('input - floats become an FP32 tensor (rounded to float32)', () => {
      const t = parseInput([0.1, 2], floats);
      expect(t.dtype).to.equal('FP32');
      expect(t.shape).to.deep.equal([2]);
      expect(toNumbers(t)).to.deep.equal([Math.fround(0.1), 2]);
    });

    it('input - ints become an INT32 tensor, int32 limits included', () => {
      const t = parseInput([0, -1, 2147483647, -2147483648], ints);
      expect(t.dtype).to.equal('INT32');
      expect(toNumbers(t)).to.deep.equal([0, -1, 2147483647, -2147483648]);
    });

    it('input - bytes become a UINT8 tensor from a number array', () => {
      const t = parseInput([0, 1, 255], bytes);
      expect(t.dtype).to.equal('UINT8');
      expect(t.shape).to.deep.equal([3]);
      expect(toNumbers(t)).to.deep.equal([0, 1, 255]);
    });

    it('input - bytes become a UINT8 tensor from a base64 string', () => {
      const t = parseInput(Buffer.from([1, 2, 3, 250]).toString('base64'), bytes);
      expect(t.dtype).to.equal('UINT8');
      expect(t.shape).to.deep.equal([4]);
      expect(toNumbers(t)).to.deep.equal([1, 2, 3, 250]);
    });

    it('input - an empty base64 string is an empty input', () => {
      expectCode(() => parseInput('', bytes), 'CLIPPER_ERR_INPUT_SHAPE', /empty/);
    });

    it('input - strings become a BYTES tensor: a scalar for one string, 1-D for an array', () => {
      const one = parseInput('héllo 😀', strings);
      expect(one.dtype).to.equal('BYTES');
      expect(one.shape).to.deep.equal([]);
      expect(toStrings(one)).to.deep.equal(['héllo 😀']);

      const many = parseInput(['a', '', 'ccc'], strings);
      expect(many.shape).to.deep.equal([3]);
      expect(toStrings(many)).to.deep.equal(['a', '', 'ccc']);
    });

    it('input - an empty string is one (empty) string input', () => {
      const t = parseInput('', strings);
      expect(t.shape).to.deep.equal([]);
      expect(toStrings(t)).to.deep.equal(['']);
    });

    it('input - any non-empty finite double array round-trips as doubles', () => {
      fc.assert(
        fc.property(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 30 }), (xs) => {
          const t = parseInput(xs, doubles);
          expect(t.shape).to.deep.equal([xs.length]);
          toNumbers(t).forEach((x, i) => expect(Object.is(x, xs[i])).to.equal(true));
        }),
      );
    });

    it('input - any non-empty int32 array round-trips as ints', () => {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: -2147483648, max: 2147483647 }), { minLength: 1, maxLength: 30 }), (xs) => {
          expect(toNumbers(parseInput(xs, ints))).to.deep.equal(xs.map((x) => x + 0)); // -0 reads back as 0
        }),
      );
    });
  });

  describe('wrong types', () => {
    it('input - non-numbers in a numeric input are CLIPPER_ERR_INPUT_TYPE naming the element', () => {
      expectCode(() => parseInput([1, '2'], doubles), 'CLIPPER_ERR_INPUT_TYPE', /element 1 is the string "2"/);
      expectCode(() => parseInput([null], floats), 'CLIPPER_ERR_INPUT_TYPE', /element 0 is null/);
      expectCode(() => parseInput([[1]], ints), 'CLIPPER_ERR_INPUT_TYPE', /element 0 is an array/);
      expectCode(() => parseInput([true], doubles), 'CLIPPER_ERR_INPUT_TYPE', /element 0 is boolean/);
    });

    it('input - a numeric input that is not an array or tensor is CLIPPER_ERR_INPUT_TYPE', () => {
      expectCode(() => parseInput(5, doubles), 'CLIPPER_ERR_INPUT_TYPE', /got number/);
      expectCode(() => parseInput('1,2,3', doubles), 'CLIPPER_ERR_INPUT_TYPE', /the string/);
      expectCode(() => parseInput(null, floats), 'CLIPPER_ERR_INPUT_TYPE', /got null/);
      expectCode(() => parseInput({ values: [1] }, ints), 'CLIPPER_ERR_INPUT_TYPE', /got object/);
      expectCode(() => parseInput('x'.repeat(100), ints), 'CLIPPER_ERR_INPUT_TYPE', /"x{20}…"/);
    });

    it('input - a strings input must be strings', () => {
      expectCode(() => parseInput([1, 2], strings), 'CLIPPER_ERR_INPUT_TYPE', /string/);
      expectCode(() => parseInput(['a', 1], strings), 'CLIPPER_ERR_INPUT_TYPE');
      expectCode(() => parseInput(7, strings), 'CLIPPER_ERR_INPUT_TYPE');
      expectCode(() => parseInput(null, strings), 'CLIPPER_ERR_INPUT_TYPE');
    });

    it('input - an empty array is CLIPPER_ERR_INPUT_SHAPE', () => {
      for (const spec of [doubles, floats, ints, bytes, strings]) {
        expectCode(() => parseInput([], spec), 'CLIPPER_ERR_INPUT_SHAPE', /empty/);
      }
    });
  });

  describe('finiteness and ranges', () => {
    it('input - NaN and ±Infinity are CLIPPER_ERR_INPUT_NOT_FINITE naming the element', () => {
      for (const spec of [doubles, floats, ints, bytes]) {
        expectCode(() => parseInput([1, NaN], spec), 'CLIPPER_ERR_INPUT_NOT_FINITE', /element 1 is NaN/);
        expectCode(() => parseInput([Infinity], spec), 'CLIPPER_ERR_INPUT_NOT_FINITE', /element 0 is Infinity/);
        expectCode(() => parseInput([0, 0, -Infinity], spec), 'CLIPPER_ERR_INPUT_NOT_FINITE', /element 2 is -Infinity/);
      }
    });

    it('input - NaN inside an FP64 or FP32 tensor of raw bytes is CLIPPER_ERR_INPUT_NOT_FINITE', () => {
      expectCode(() => parseInput(fromNumbers('FP64', [1, NaN]), doubles), 'CLIPPER_ERR_INPUT_NOT_FINITE', /element 1/);
      expectCode(() => parseInput(fromNumbers('FP32', [Infinity]), floats), 'CLIPPER_ERR_INPUT_NOT_FINITE');
      expectCode(() => parseInput(fromNumbers('FP64', [Infinity]), floats), 'CLIPPER_ERR_INPUT_NOT_FINITE');
    });

    it('input - a double beyond float32 range is refused for floats instead of becoming Infinity', () => {
      expectCode(() => parseInput([1e39], floats), 'CLIPPER_ERR_INPUT_NOT_FINITE');
      expectCode(() => parseInput(fromNumbers('FP64', [-1e300]), floats), 'CLIPPER_ERR_INPUT_NOT_FINITE');
    });

    it('input - non-integers for ints and bytes are CLIPPER_ERR_INPUT_TYPE', () => {
      expectCode(() => parseInput([1, 2.5], ints), 'CLIPPER_ERR_INPUT_TYPE', /element 1 is 2.5, not an integer/);
      expectCode(() => parseInput([0.1], bytes), 'CLIPPER_ERR_INPUT_TYPE', /not an integer/);
      expectCode(() => parseInput(fromNumbers('FP64', [1, 1.5]), ints), 'CLIPPER_ERR_INPUT_TYPE', /element 1 is 1.5/);
    });

    it('input - ints outside int32 are CLIPPER_ERR_INPUT_TYPE', () => {
      expectCode(() => parseInput([2147483648], ints), 'CLIPPER_ERR_INPUT_TYPE', /outside int32/);
      expectCode(() => parseInput([-2147483649], ints), 'CLIPPER_ERR_INPUT_TYPE', /outside int32/);
      expectCode(() => parseInput(fromNumbers('INT64', [2 ** 40]), ints), 'CLIPPER_ERR_INPUT_TYPE', /outside int32/);
    });

    it('input - bytes outside 0..255 are CLIPPER_ERR_INPUT_TYPE', () => {
      expectCode(() => parseInput([256], bytes), 'CLIPPER_ERR_INPUT_TYPE', /element 0 is 256, not a byte/);
      expectCode(() => parseInput([0, -1], bytes), 'CLIPPER_ERR_INPUT_TYPE', /element 1 is -1, not a byte/);
      fc.assert(
        fc.property(fc.integer().filter((x) => x < 0 || x > 255), (x) => {
          expectCode(() => parseInput([x], bytes), 'CLIPPER_ERR_INPUT_TYPE', /not a byte/);
        }),
      );
    });
  });

  describe('shapes', () => {
    it('input - without input_shape any non-empty 1-D array is accepted with its length', () => {
      expect(parseInput([1], doubles).shape).to.deep.equal([1]);
      expect(parseInput(new Array(100).fill(0), doubles).shape).to.deep.equal([100]);
    });

    it('input - with input_shape the values are reshaped to it', () => {
      const t = parseInput([1, 2, 3, 4, 5, 6], { inputType: 'doubles', inputShape: [2, 3] });
      expect(t.shape).to.deep.equal([2, 3]);
      expect(toNumbers(t)).to.deep.equal([1, 2, 3, 4, 5, 6]);
      expect(parseInput('x', { inputType: 'strings', inputShape: [1] }).shape).to.deep.equal([1]);
      expect(parseInput('AQID', { inputType: 'bytes', inputShape: [3] }).shape).to.deep.equal([3]);
    });

    it('input - the returned shape is a copy of input_shape', () => {
      const inputShape = [2];
      const t = parseInput([1, 2], { inputType: 'doubles', inputShape });
      t.shape.push(9);
      expect(inputShape).to.deep.equal([2]);
    });

    it('input - with input_shape a different element count is CLIPPER_ERR_INPUT_SHAPE', () => {
      expectCode(() => parseInput([1, 2, 3], { inputType: 'doubles', inputShape: [2, 2] }), 'CLIPPER_ERR_INPUT_SHAPE', /expected 4 values \(shape \[2,2\]\), got 3/);
      expectCode(() => parseInput(['a', 'b'], { inputType: 'strings', inputShape: [3] }), 'CLIPPER_ERR_INPUT_SHAPE', /expected 3 values/);
      expectCode(() => parseInput('AQID', { inputType: 'bytes', inputShape: [4] }), 'CLIPPER_ERR_INPUT_SHAPE', /got 3/);
    });

    it('input - any array whose length differs from input_shape is refused', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 20 }), (want, got) => {
          fc.pre(want !== got);
          expectCode(() => parseInput(new Array(got).fill(1), { inputType: 'ints', inputShape: [want] }), 'CLIPPER_ERR_INPUT_SHAPE');
        }),
      );
    });
  });

  describe('tensor maps', () => {
    it('input - a tensor with raw bytes of the right dtype is used as it is', () => {
      const wire = fromNumbers('FP64', [1, 2, 3]);
      const t = parseInput({ dtype: 'FP64', shape: [3], data: wire.data }, doubles);
      expect(t.dtype).to.equal('FP64');
      expect(t.data).to.equal(wire.data);
      expect(toNumbers(t)).to.deep.equal([1, 2, 3]);
    });

    it('input - a tensor keeps its multi-dimensional shape without input_shape, and is reshaped with one', () => {
      const wire = fromNumbers('FP32', [1, 2, 3, 4], [2, 2]);
      expect(parseInput(wire, floats).shape).to.deep.equal([2, 2]);
      expect(parseInput(wire, { inputType: 'floats', inputShape: [4] }).shape).to.deep.equal([4]);
      expectCode(() => parseInput(wire, { inputType: 'floats', inputShape: [5] }), 'CLIPPER_ERR_INPUT_SHAPE');
    });

    it('input - a tensor of another numeric dtype is converted to the app\'s dtype', () => {
      const fromInt = parseInput(fromNumbers('INT32', [1, -2]), doubles);
      expect(fromInt.dtype).to.equal('FP64');
      expect(toNumbers(fromInt)).to.deep.equal([1, -2]);

      const fromDouble = parseInput(fromNumbers('FP64', [3, 4], [1, 2]), ints);
      expect(fromDouble.dtype).to.equal('INT32');
      expect(fromDouble.shape).to.deep.equal([1, 2]);
      expect(toNumbers(fromDouble)).to.deep.equal([3, 4]);

      const fromUint8 = parseInput(fromNumbers('UINT8', [200]), floats);
      expect(fromUint8.dtype).to.equal('FP32');
      expect(toNumbers(fromUint8)).to.deep.equal([200]);

      expectCode(() => parseInput(fromNumbers('INT32', [300]), bytes), 'CLIPPER_ERR_INPUT_TYPE', /not a byte/);
    });

    it('input - a tensor with JSON flat-array data is built in its dtype, then converted', () => {
      const same = parseInput({ dtype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] }, floats);
      expect(same.dtype).to.equal('FP32');
      expect(same.shape).to.deep.equal([2, 2]);
      expect(toNumbers(same)).to.deep.equal([1, 2, 3, 4]);

      const converted = parseInput({ dtype: 'INT64', shape: [2], data: [5, -6] }, doubles);
      expect(converted.dtype).to.equal('FP64');
      expect(toNumbers(converted)).to.deep.equal([5, -6]);

      const bools = parseInput({ dtype: 'BOOL', shape: [3], data: [true, false, 1] }, ints);
      expect(toNumbers(bools)).to.deep.equal([1, 0, 1]);
    });

    it('input - JSON flat-array data is checked like plain arrays', () => {
      expectCode(() => parseInput({ dtype: 'INT32', shape: [2], data: [1, 1.5] }, ints), 'CLIPPER_ERR_INPUT_TYPE', /not an integer/);
      expectCode(() => parseInput({ dtype: 'FP64', shape: [1], data: ['1'] }, doubles), 'CLIPPER_ERR_INPUT_TYPE');
      expectCode(() => parseInput({ dtype: 'UINT8', shape: [1], data: [999] }, bytes), 'CLIPPER_ERR_INPUT_TYPE', /not a byte/);
      expectCode(() => parseInput({ dtype: 'FP64', shape: [3], data: [1, 2] }, doubles), 'CLIPPER_ERR_INPUT_SHAPE');
      expectCode(() => parseInput({ dtype: 'FP64', shape: [0], data: [] }, doubles), 'CLIPPER_ERR_INPUT_SHAPE', /empty/);
    });

    it('input - a BYTES tensor feeds a strings app, as raw bytes or JSON strings', () => {
      const raw = fromStrings(['x', 'yy'], [1, 2]);
      const t = parseInput({ dtype: 'BYTES', shape: [1, 2], data: raw.data }, strings);
      expect(t.shape).to.deep.equal([1, 2]);
      expect(toStrings(t)).to.deep.equal(['x', 'yy']);
      expect(toStrings(parseInput({ dtype: 'BYTES', shape: [2], data: ['a', 'é'] }, strings))).to.deep.equal(['a', 'é']);
      expectCode(() => parseInput({ dtype: 'BYTES', shape: [2], data: ['a', 2] }, strings), 'CLIPPER_ERR_INPUT_TYPE', /strings/);
      expectCode(() => parseInput({ dtype: 'BYTES', shape: [3], data: ['a'] }, strings), 'CLIPPER_ERR_INPUT_SHAPE');
    });

    it('input - dtype families must match: BYTES for strings apps, numeric otherwise', () => {
      expectCode(() => parseInput(fromStrings(['1']), doubles), 'CLIPPER_ERR_INPUT_TYPE', /BYTES/);
      expectCode(() => parseInput(fromNumbers('FP32', [1]), strings), 'CLIPPER_ERR_INPUT_TYPE', /expected a BYTES tensor, got FP32/);
    });

    it('input - a malformed tensor map is refused with a coded error', () => {
      expectCode(() => parseInput({ dtype: 'FP16', shape: [1], data: [1] }, floats), 'CLIPPER_ERR_INPUT_TYPE', /FP16/);
      expectCode(() => parseInput({ dtype: 'FP32', shape: [-1], data: [1] }, floats), 'CLIPPER_ERR_INPUT_SHAPE');
      expectCode(() => parseInput({ dtype: 'FP32', shape: '1', data: [1] }, floats), 'CLIPPER_ERR_INPUT_SHAPE');
      expectCode(() => parseInput({ dtype: 'FP32', shape: new Array(9).fill(1), data: [1] }, floats), 'CLIPPER_ERR_INPUT_SHAPE', /at most 8/);
      expectCode(() => parseInput({ dtype: 'FP32', shape: [1], data: 'AAAAAA==' }, floats), 'CLIPPER_ERR_INPUT_TYPE', /bytes .* or a flat array/);
      expectCode(() => parseInput({ dtype: 'FP32', shape: [2], data: new Uint8Array(7) }, floats), 'CLIPPER_ERR_INPUT_SHAPE', /data has 7/);
      expectCode(() => parseInput({ dtype: 'BYTES', shape: [1], data: Uint8Array.of(9, 0, 0, 0, 1) }, strings), 'CLIPPER_ERR_INPUT_SHAPE');
    });

    it('input - tensorFromWire accepts an 8-dimensional shape', () => {
      const t = tensorFromWire({ dtype: 'UINT8', shape: [1, 1, 1, 1, 1, 1, 1, 2], data: [1, 2] });
      expect(t.shape).to.have.length(8);
      expect(toNumbers(t)).to.deep.equal([1, 2]);
    });

    it('input - BOOL tensor data other than true/false/0/1 is refused', () => {
      expectCode(() => tensorFromWire({ dtype: 'BOOL', shape: [1], data: [0.5] }), 'CLIPPER_ERR_INPUT_TYPE');
      expectCode(() => tensorFromWire({ dtype: 'BOOL', shape: [1], data: [7] }), 'CLIPPER_ERR_INPUT_TYPE');
    });
  });

  describe('parseInputBatch', () => {
    it('input - parseInputBatch parses every row', () => {
      const rows = parseInputBatch([[1, 2], [3, 4], [5, 6]], doubles);
      expect(rows).to.have.length(3);
      expect(rows.map(toNumbers)).to.deep.equal([[1, 2], [3, 4], [5, 6]]);
      expect(rows.every((r: Tensor) => r.dtype === 'FP64')).to.equal(true);
    });

    it('input - parseInputBatch refuses rows of different lengths, naming the row', () => {
      const e = thrown(() => parseInputBatch([[1, 2], [3, 4], [5, 6, 7]], doubles));
      expect(e.code).to.equal('CLIPPER_ERR_INPUT_BATCH_SHAPE');
      expect(e.message).to.match(/input_batch\[2\] has shape \[3\], input_batch\[0\] has \[2\]/);
      expectCode(() => parseInputBatch(['a', ['b', 'c']], strings), 'CLIPPER_ERR_INPUT_BATCH_SHAPE', /input_batch\[1\]/);
    });

    it('input - parseInputBatch accepts strings of different lengths (one element each)', () => {
      expect(parseInputBatch(['a', 'bbbb', ''], strings).map(toStrings)).to.deep.equal([['a'], ['bbbb'], ['']]);
    });

    it('input - parseInputBatch keeps the code of a bad row and prefixes its index', () => {
      expectCode(() => parseInputBatch([[1], [NaN]], doubles), 'CLIPPER_ERR_INPUT_NOT_FINITE', /^input_batch\[1\]: input contains NaN or Infinity: element 0 is NaN$/);
      expectCode(() => parseInputBatch([[1], [2], ['x']], ints), 'CLIPPER_ERR_INPUT_TYPE', /^input_batch\[2\]: /);
      expectCode(() => parseInputBatch([[]], ints), 'CLIPPER_ERR_INPUT_SHAPE', /^input_batch\[0\]: /);
    });

    it('input - parseInputBatch with input_shape checks every row against it', () => {
      const spec: InputSpec = { inputType: 'floats', inputShape: [2] };
      expect(parseInputBatch([[1, 2], [3, 4]], spec).map((r) => r.shape)).to.deep.equal([[2], [2]]);
      expectCode(() => parseInputBatch([[1, 2], [3]], spec), 'CLIPPER_ERR_INPUT_SHAPE', /^input_batch\[1\]: .*expected 2 values/);
    });

    it('input - parseInputBatch refuses mixed lengths for any batch with a differing row', () => {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 8 }), (lengths) => {
          const rows = lengths.map((n) => new Array(n).fill(1));
          const bad = lengths.findIndex((n) => n !== lengths[0]);
          if (bad < 0) {
            expect(parseInputBatch(rows, ints)).to.have.length(lengths.length);
          } else {
            expectCode(() => parseInputBatch(rows, ints), 'CLIPPER_ERR_INPUT_BATCH_SHAPE', new RegExp(`^.*input_batch\\[${bad}\\] has shape`));
          }
        }),
      );
    });
  });
});
