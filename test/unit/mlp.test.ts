import { expect } from 'chai';
import fc from 'fast-check';
import * as ort from 'onnxruntime-node';

import { parseDigitsCsv, scalePixels } from '../../infra/models/digits-data.js';
import {
  accuracy,
  gaussian,
  mulberry32,
  predictProba,
  softmax,
  splitTrainTest,
  trainMlp,
  type MlpModel,
} from '../../infra/models/mlp.js';
import { MLP_INPUT_NAME, MLP_OUTPUT_NAME, mlpToOnnx } from '../../infra/models/mlp-onnx.js';
import { decodeModel, encodeModel } from '../../infra/onnx/onnx-writer.js';

const draws = (rng: () => number, n: number): number[] => Array.from({ length: n }, rng);

/** Four well-separated 2-D blobs, one per class. */
function toyProblem(perClass: number, seed: number): { xs: Float64Array[]; ys: number[] } {
  const rng = mulberry32(seed);
  const centres = [
    [-2, -2],
    [2, -2],
    [-2, 2],
    [2, 2],
  ];
  const xs: Float64Array[] = [];
  const ys: number[] = [];
  centres.forEach(([cx, cy], label) => {
    for (let i = 0; i < perClass; i++) {
      xs.push(Float64Array.of(cx! + 0.3 * gaussian(rng), cy! + 0.3 * gaussian(rng)));
      ys.push(label);
    }
  });
  return { xs, ys };
}

/** A small network with seeded weights, large enough to exercise every layer. */
function knownNetwork(inputSize: number, hidden: number, classes: number): MlpModel {
  const rng = mulberry32(99);
  const weights = (n: number): Float32Array => Float32Array.from(draws(rng, n), (v) => v * 2 - 1);
  return {
    inputSize,
    hidden,
    classes,
    w1: weights(inputSize * hidden),
    b1: weights(hidden),
    w2: weights(hidden * classes),
    b2: weights(classes),
  };
}

describe('mlp', () => {
  it('mlp - mulberry32 repeats its sequence for a seed and differs across seeds', () => {
    const a = draws(mulberry32(42), 100);
    expect(draws(mulberry32(42), 100)).to.deep.equal(a);
    expect(draws(mulberry32(43), 100)).to.not.deep.equal(a);
    for (const v of a) expect(v).to.be.within(0, 1 - Number.EPSILON);
  });

  it('mlp - splitTrainTest is deterministic, disjoint, and holds out the requested fraction', () => {
    const split = splitTrainTest(100, 0.2, 7);
    expect(splitTrainTest(100, 0.2, 7)).to.deep.equal(split);
    expect(splitTrainTest(100, 0.2, 8).test).to.not.deep.equal(split.test);
    expect(split.test).to.have.length(20);
    expect([...split.train, ...split.test].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
    expect(split.test).to.deep.equal([...split.test].sort((a, b) => a - b));
  });

  it('mlp - a stratified split takes the same fraction from every class', () => {
    const labels = Array.from({ length: 90 }, (_, i) => (i < 30 ? 0 : i < 70 ? 1 : 2));
    const { test } = splitTrainTest(labels.length, 0.25, 3, labels);
    const perClass = [0, 1, 2].map((c) => test.filter((i) => labels[i] === c).length);
    expect(perClass).to.deep.equal([8, 10, 5]); // round(30/4), round(40/4), round(20/4)
  });

  it('mlp - training is deterministic and reaches 100% on a tiny separable toy problem', () => {
    const { xs, ys } = toyProblem(15, 5);
    const options = { xs, ys, hidden: 8, epochs: 40, batchSize: 8, learningRate: 0.02, seed: 11 };
    const epochs: number[] = [];
    const model = trainMlp({ ...options, onEpoch: (p) => epochs.push(p.epoch) });
    expect(accuracy(model, xs, ys)).to.equal(1);
    expect(epochs).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(trainMlp(options).w1).to.deep.equal(model.w1);
  });

  it('mlp - softmax outputs are positive and sum to 1 for any finite logits', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e4, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 20 }), (logits) => {
        const p = softmax(logits);
        const sum = p.reduce((a, b) => a + b, 0);
        expect(sum).to.be.closeTo(1, 1e-9);
        for (const v of p) expect(v).to.be.within(0, 1);
      }),
    );
  });

  it('mlp - predictProba of any input is a probability distribution', () => {
    const model = knownNetwork(4, 6, 3);
    fc.assert(
      fc.property(fc.array(fc.double({ min: -100, max: 100, noNaN: true }), { minLength: 4, maxLength: 4 }), (x) => {
        const sum = predictProba(model, x).reduce((a, b) => a + b, 0);
        expect(sum).to.be.closeTo(1, 1e-9);
      }),
    );
  });

  it('mlp - parseDigitsCsv reads rows and rejects out-of-range pixels', () => {
    const row = [...Array.from({ length: 64 }, (_, i) => i % 17), 7].join(',');
    const data = parseDigitsCsv(`${row}\n${row}\n`);
    expect(data.pixels).to.have.length(2);
    expect(Array.from(data.labels)).to.deep.equal([7, 7]);
    expect(scalePixels(data.pixels[0]!)[16]).to.equal(1);
    expect(() => parseDigitsCsv(row.replace(/^0,/, '17,'))).to.throw(RangeError, /line 1/);
  });

  it('mlp - the ONNX export of a known network matches the TS forward pass in onnxruntime', async () => {
    const model = knownNetwork(5, 7, 3);
    const inputScale = 0.25;
    const onnx = mlpToOnnx(model, { inputScale });

    const decoded = decodeModel(onnx) as { irVersion: number; opsetImport: { version: number }[] };
    expect(decoded.irVersion).to.equal(8);
    expect(decoded.opsetImport[0]!.version).to.equal(13);

    const rng = mulberry32(123);
    const rows = Array.from({ length: 6 }, () => Float32Array.from(draws(rng, 5), (v) => v * 16));
    const input = new Float32Array(rows.length * 5);
    rows.forEach((r, i) => input.set(r, i * 5));
    const session = await ort.InferenceSession.create(onnx);
    try {
      const out = (await session.run({ [MLP_INPUT_NAME]: new ort.Tensor('float32', input, [rows.length, 5]) }))[MLP_OUTPUT_NAME]!;
      expect(out.dims).to.deep.equal([rows.length, 3]);
      const data = out.data as Float32Array;
      rows.forEach((r, i) => {
        const expected = predictProba(model, r.map((v) => v * inputScale));
        for (let k = 0; k < 3; k++) expect(data[i * 3 + k]).to.be.closeTo(expected[k]!, 1e-5);
      });
    } finally {
      await session.release();
    }
  });

  it('mlp - the ONNX writer rejects graphs that use a value before defining it', () => {
    expect(() =>
      encodeModel({
        name: 'bad',
        inputs: [{ name: 'x', dims: ['N', 2] }],
        outputs: [{ name: 'y', dims: ['N', 2] }],
        initializers: [],
        nodes: [{ opType: 'Relu', inputs: ['missing'], outputs: ['y'] }],
      }),
    ).to.throw(RangeError, /missing/);
  });
});
