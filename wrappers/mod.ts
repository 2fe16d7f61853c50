/**
 * Model wrappers: what a worker loads to evaluate one model version. A wrapper takes a batch of
 * per-query input tensors and returns one output tensor per query, in order.
 */
import path from 'node:path';
import type { Logger } from '../shared/logging.js';
import type { ModelRecord } from '../shared/registry.js';
import type { ClipperError } from '../shared/errors.js';
import type { Tensor } from '../shared/tensor.js';
import { OnnxWrapper } from './onnx.js';
import { JsWrapper } from './js.js';

/** One row's result: its output, or the error that row alone caused (the others still get theirs). */
export type RowResult = Tensor | ClipperError;

export interface ModelWrapper {
  readonly kind: string;
  /** Evaluates a batch: one result per input, same order. A failure of the whole model throws. */
  predict(inputs: readonly Tensor[]): Promise<RowResult[]>;
  /** A row the model takes (zeros of its declared shape) for the worker's warm-up; none when the shape is not fully known. */
  sampleRow?(): Tensor | undefined;
  close(): Promise<void>;
}

/** Resolves a model path: absolute as given, relative to `baseDir` otherwise. */
export function resolveModelPath(p: string, baseDir: string): string {
  return path.isAbsolute(p) ? p : path.resolve(baseDir, p);
}

export async function loadWrapper(model: ModelRecord, baseDir: string, log: Logger): Promise<ModelWrapper> {
  const file = resolveModelPath(model.model_data_path, baseDir);
  switch (model.wrapper) {
    case 'onnx':
      return OnnxWrapper.load(file, model.wrapper_config ?? {}, log);
    case 'js':
      return JsWrapper.load(file, log);
  }
}

export { OnnxWrapper, JsWrapper };
