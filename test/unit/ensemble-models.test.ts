import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';

import { DIGITS_CLASSES, DIGITS_FEATURES, loadDigits, type DigitsDataset } from '../../infra/models/digits-data.js';
import { ensembleSplits, type EnsembleSplits } from '../../infra/models/ensemble-splits.js';
import { argmax, splitTrainTest } from '../../infra/models/mlp.js';
import { MLP_INPUT_NAME, MLP_OUTPUT_NAME } from '../../infra/models/mlp-onnx.js';
import { PROJECT_ROOT } from '../../shared/process.js';

const MODELS = path.join(PROJECT_ROOT, 'infra', 'models');
const ENSEMBLE = path.join(MODELS, 'ensemble');

type Predict = (inputs: unknown[]) => ArrayLike<number>[] | Promise<ArrayLike<number>[]>;
interface JsModule {
  predict: Predict;
}

/** Imports a .mjs model the way the js wrapper does. */
async function importModel<T extends JsModule>(file: string): Promise<T> {
  return (await import(pathToFileURL(path.join(MODELS, file)).href)) as T;
}

/** Runs raw pixel rows through an .onnx model the way the onnx wrapper does: one FP32 [n, 64] batch. */
async function onnxPredict(file: string, rows: readonly Float32Array[]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(path.join(ENSEMBLE, file));
  try {
    const input = new Float32Array(rows.length * DIGITS_FEATURES);
    rows.forEach((row, r) => input.set(row, r * DIGITS_FEATURES));
    const out = (await session.run({ [MLP_INPUT_NAME]: new ort.Tensor('float32', input, [rows.length, DIGITS_FEATURES]) }))[MLP_OUTPUT_NAME];
    expect(out?.type).to.equal('float32');
    expect(out?.dims).to.deep.equal([rows.length, DIGITS_CLASSES]);
    const data = out!.data as Float32Array;
    return rows.map((_, r) => data.slice(r * DIGITS_CLASSES, (r + 1) * DIGITS_CLASSES));
  } finally {
    await session.release();
  }
}

async function jsPredict(file: string, rows: readonly Float32Array[]): Promise<Float32Array[]> {
  const mod = await importModel(file);
  const outputs = await mod.predict(rows.map((r) => Float32Array.from(r)));
  expect(outputs).to.have.length(rows.length);
  return outputs.map((o) => Float32Array.from(o));
}

const accuracyOf = (outputs: readonly ArrayLike<number>[], labels: readonly number[]): number =>
  outputs.filter((p, i) => argmax(p) === labels[i]).length / outputs.length;

function expectProbabilities(p: ArrayLike<number>, what: string): void {
  expect(p.length, what).to.equal(DIGITS_CLASSES);
  let sum = 0;
  for (let c = 0; c < p.length; c++) {
    expect(Number.isFinite(p[c]) && p[c]! >= 0, `${what}[${c}] = ${p[c]}`).to.equal(true);
    sum += p[c]!;
  }
  expect(sum, what).to.be.closeTo(1, 1e-3);
}

const MEMBERS = ['digits-logreg', 'digits-mlp-fit', 'digits-knn', 'digits-forest'] as const;
type Member = (typeof MEMBERS)[number];

describe('ensemble models', function () {
  let data: DigitsDataset;
  let splits: EnsembleSplits;
  let testRows: Float32Array[];
  let testLabels: number[];
  const outputs = {} as Record<Member, Float32Array[]>;

  before(async function () {
    data = await loadDigits(path.join(MODELS, 'data', 'digits.csv.gz'));
    splits = ensembleSplits(data.labels);
    testRows = splits.test.map((i) => data.pixels[i]!);
    testLabels = splits.test.map((i) => data.labels[i]!);
    outputs['digits-logreg'] = await onnxPredict('digits-logreg.onnx', testRows);
    outputs['digits-mlp-fit'] = await onnxPredict('digits-mlp-fit.onnx', testRows);
    outputs['digits-knn'] = await jsPredict('digits-knn.mjs', testRows);
    outputs['digits-forest'] = await jsPredict('digits-forest.mjs', testRows);
  });

  it('ensemble splits - are disjoint, cover every row and hold out exactly the MLP trainer test split', () => {
    const n = data.labels.length;
    const all = [...splits.fit, ...splits.feedback, ...splits.test].sort((a, b) => a - b);
    expect(all).to.deep.equal(Array.from({ length: n }, (_, i) => i));
    expect(splits.test).to.deep.equal(splitTrainTest(n, 0.2, 2024, data.labels).test);
    const mlpMetadata = JSON.parse(readFileSync(path.join(MODELS, 'digits-mlp.json'), 'utf8')) as { test_indices: number[] };
    expect(splits.test).to.deep.equal(mlpMetadata.test_indices);
    expect(ensembleSplits(data.labels)).to.deep.equal(splits);
  });

  it('ensemble splits - give each class a quarter of its non-test rows as feedback', () => {
    for (let c = 0; c < DIGITS_CLASSES; c++) {
      const count = (rows: number[]): number => rows.filter((i) => data.labels[i] === c).length;
      const rest = count(splits.fit) + count(splits.feedback);
      expect(count(splits.feedback), `class ${c}`).to.equal(Math.round(rest * 0.25));
    }
  });

  const floors: Record<Member, [string, number]> = {
    'digits-logreg': ['logistic regression', 0.95],
    'digits-mlp-fit': ['the small MLP', 0.96],
    'digits-knn': ['k nearest neighbours', 0.97],
    'digits-forest': ['the random forest', 0.95],
  };
  for (const member of MEMBERS) {
    const [what, floor] = floors[member];
    it(`ensemble models - ${what} reaches ${floor * 100}% on the held-out split`, () => {
      expect(accuracyOf(outputs[member], testLabels)).to.be.at.least(floor);
    });
  }

  it('ensemble models - every member answers 10 finite non-negative probabilities summing to 1', () => {
    for (const member of MEMBERS) outputs[member].forEach((p, r) => expectProbabilities(p, `${member} row ${r}`));
  });

  it('ensemble models - k nearest neighbours gives no class probability exactly 0', () => {
    for (const p of outputs['digits-knn']) expect(Math.min(...p)).to.be.greaterThan(0);
  });

  it('ensemble models - every pair of members gets different held-out rows wrong', () => {
    const wrong = (m: Member, r: number): boolean => argmax(outputs[m][r]!) !== testLabels[r];
    MEMBERS.forEach((a, i) =>
      MEMBERS.slice(i + 1).forEach((b) => {
        const exactlyOne = testLabels.filter((_, r) => wrong(a, r) !== wrong(b, r)).length;
        expect(exactlyOne, `${a} vs ${b}`).to.be.at.least(3);
      }),
    );
  });

  it('ensemble models - ensemble.json records the accuracies the served models reach', () => {
    const recorded = JSON.parse(readFileSync(path.join(ENSEMBLE, 'ensemble.json'), 'utf8')) as {
      members: Record<Member, { accuracy: { test: number } }>;
      test_accuracy_of_average: number;
    };
    for (const member of MEMBERS) expect(recorded.members[member].accuracy.test, member).to.equal(accuracyOf(outputs[member], testLabels));
    const average = testRows.map((_, r) => {
      const mean = new Float64Array(DIGITS_CLASSES);
      for (const m of MEMBERS) for (let c = 0; c < DIGITS_CLASSES; c++) mean[c] = mean[c]! + outputs[m][r]![c]! / MEMBERS.length;
      return mean;
    });
    expect(recorded.test_accuracy_of_average).to.equal(accuracyOf(average, testLabels));
  });

  it('ensemble models - the committed artefacts stay under 2 MiB', () => {
    const bytes = ['digits-logreg.onnx', 'digits-mlp-fit.onnx', 'digits-knn.json', 'digits-forest.json', 'ensemble.json']
      .map((f) => readFileSync(path.join(ENSEMBLE, f)).length)
      .reduce((a, b) => a + b, 0);
    expect(bytes).to.be.below(2 * 1024 * 1024);
  });

  it('garbage model - answers valid probabilities that depend only on the input bytes', async () => {
    const garbage = await importModel('garbage.mjs');
    const first = await garbage.predict(testRows.map((r) => Float32Array.from(r)));
    const again = await garbage.predict(testRows.map((r) => Float32Array.from(r)));
    expect(again.map((p) => Array.from(p))).to.deep.equal(first.map((p) => Array.from(p)));
    first.forEach((p, r) => {
      expect(p).to.be.instanceOf(Float32Array);
      expectProbabilities(p, `garbage row ${r}`);
    });
    const distinct = new Set(first.map((p) => Array.from(p).join(',')));
    expect(distinct.size).to.be.greaterThan(first.length * 0.9);
    expect(accuracyOf(first, testLabels)).to.be.below(0.3);
    const [text] = await garbage.predict(['7']);
    expectProbabilities(text!, 'garbage string input');
  });

  it('straggler model - answers exactly as k nearest neighbours', async () => {
    const straggler = await importModel('straggler-knn.mjs');
    const rows = testRows.slice(0, 20);
    const answers = await straggler.predict(rows.map((r) => Float32Array.from(r)));
    expect(answers.map((p) => Array.from(p))).to.deep.equal(outputs['digits-knn'].slice(0, 20).map((p) => Array.from(p)));
  });

  it('straggler model - a stalled call waits on a timer before answering', async () => {
    const { stragglerPredictor } = await importModel<JsModule & { stragglerPredictor: (o: { probability: number; stallMs: number; seed: number }) => Predict }>(
      'straggler-knn.mjs',
    );
    const alwaysStalls = stragglerPredictor({ probability: 1, stallMs: 40, seed: 1 });
    let answered = false;
    const pending = Promise.resolve(alwaysStalls([testRows[0]])).then((out) => {
      answered = true;
      return out;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(answered).to.equal(false);
    const [p] = await pending;
    expect(Array.from(p!)).to.deep.equal(Array.from(outputs['digits-knn'][0]!));
  });
});
