// Exports a trained LogregModel as an ONNX graph:
//   input [N, in] → Mul(scale) → Gemm(W, b) → Softmax(axis=1) → probabilities [N, classes]
// Same input/output names and input scaling as the MLP export, so a client
// sends raw pixel counts 0..16 to either.

import { attr, encodeModel, type GraphSpec, type ModelOptions } from '../onnx/onnx-writer.js';
import type { LogregModel } from './logreg.js';
import { MLP_BATCH_DIM, MLP_INPUT_NAME, MLP_OUTPUT_NAME, type MlpGraphOptions } from './mlp-onnx.js';

export function logregGraph(model: LogregModel, options: MlpGraphOptions): GraphSpec {
  if (!Number.isFinite(options.inputScale)) throw new RangeError(`inputScale must be finite, got ${options.inputScale}`);
  const spec: GraphSpec = {
    name: options.graphName ?? 'logreg',
    inputs: [{ name: MLP_INPUT_NAME, dims: [MLP_BATCH_DIM, model.inputSize] }],
    outputs: [{ name: MLP_OUTPUT_NAME, dims: [MLP_BATCH_DIM, model.classes] }],
    initializers: [
      { name: 'input_scale', dims: [], values: [options.inputScale] },
      { name: 'W', dims: [model.inputSize, model.classes], values: model.w },
      { name: 'b', dims: [model.classes], values: model.b },
    ],
    nodes: [
      { opType: 'Mul', name: 'scale', inputs: [MLP_INPUT_NAME, 'input_scale'], outputs: ['scaled'] },
      { opType: 'Gemm', name: 'dense', inputs: ['scaled', 'W', 'b'], outputs: ['logits'], attributes: { transB: attr.int(0) } },
      { opType: 'Softmax', name: 'softmax', inputs: ['logits'], outputs: [MLP_OUTPUT_NAME], attributes: { axis: attr.int(1) } },
    ],
  };
  return options.docString === undefined ? spec : { ...spec, docString: options.docString };
}

/** ONNX bytes for the model; see logregGraph for the graph's shape. */
export function logregToOnnx(model: LogregModel, graphOptions: MlpGraphOptions, modelOptions: ModelOptions = {}): Uint8Array {
  return encodeModel(logregGraph(model, graphOptions), modelOptions);
}
