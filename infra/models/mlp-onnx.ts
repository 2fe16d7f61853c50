// Exports a trained MlpModel as an ONNX graph:
//   input [N, in] → Mul(scale) → Gemm(W1, b1) → Relu → Gemm(W2, b2) → Softmax(axis=1) → probabilities [N, classes]
// The input scaling lives in the graph so clients send raw features
// (raw pixel counts 0..16 for the digits model).

import { attr, encodeModel, type GraphSpec, type ModelOptions } from '../onnx/onnx-writer.js';
import type { MlpModel } from './mlp.js';

export const MLP_INPUT_NAME = 'input';
export const MLP_OUTPUT_NAME = 'probabilities';
export const MLP_BATCH_DIM = 'N';

export interface MlpGraphOptions {
  /** Multiplier applied to the raw input before the first layer (1 for none). */
  readonly inputScale: number;
  readonly graphName?: string;
  readonly docString?: string;
}

export function mlpGraph(model: MlpModel, options: MlpGraphOptions): GraphSpec {
  if (!Number.isFinite(options.inputScale)) throw new RangeError(`inputScale must be finite, got ${options.inputScale}`);
  const spec: GraphSpec = {
    name: options.graphName ?? 'mlp',
    inputs: [{ name: MLP_INPUT_NAME, dims: [MLP_BATCH_DIM, model.inputSize] }],
    outputs: [{ name: MLP_OUTPUT_NAME, dims: [MLP_BATCH_DIM, model.classes] }],
    initializers: [
      { name: 'input_scale', dims: [], values: [options.inputScale] },
      { name: 'W1', dims: [model.inputSize, model.hidden], values: model.w1 },
      { name: 'b1', dims: [model.hidden], values: model.b1 },
      { name: 'W2', dims: [model.hidden, model.classes], values: model.w2 },
      { name: 'b2', dims: [model.classes], values: model.b2 },
    ],
    nodes: [
      { opType: 'Mul', name: 'scale', inputs: [MLP_INPUT_NAME, 'input_scale'], outputs: ['scaled'] },
      // transB = 0: W is stored [in, out], matching MlpModel's layout.
      { opType: 'Gemm', name: 'dense1', inputs: ['scaled', 'W1', 'b1'], outputs: ['hidden_pre'], attributes: { transB: attr.int(0) } },
      { opType: 'Relu', name: 'relu1', inputs: ['hidden_pre'], outputs: ['hidden'] },
      { opType: 'Gemm', name: 'dense2', inputs: ['hidden', 'W2', 'b2'], outputs: ['logits'], attributes: { transB: attr.int(0) } },
      { opType: 'Softmax', name: 'softmax', inputs: ['logits'], outputs: [MLP_OUTPUT_NAME], attributes: { axis: attr.int(1) } },
    ],
  };
  return options.docString === undefined ? spec : { ...spec, docString: options.docString };
}

/** ONNX bytes for the model; see mlpGraph for the graph's shape. */
export function mlpToOnnx(model: MlpModel, graphOptions: MlpGraphOptions, modelOptions: ModelOptions = {}): Uint8Array {
  return encodeModel(mlpGraph(model, graphOptions), modelOptions);
}
