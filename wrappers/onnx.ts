/**
 * The `onnx` wrapper: onnxruntime-node in the worker process (CPU). Input and output names, types
 * and shapes come from the model itself; the batch is stacked into one tensor per run.
 */
import * as ort from 'onnxruntime-node';
import { ClipperError } from '../shared/errors.js';
import type { Logger } from '../shared/logging.js';
import { elementCount, fromNumbers, stack, toNumbers, unstack, type DType, type Tensor } from '../shared/tensor.js';
import type { ModelWrapper, RowResult } from './mod.js';

const ORT_TO_DTYPE: Partial<Record<string, DType>> = {
  float32: 'FP32', float64: 'FP64', int32: 'INT32', int64: 'INT64', uint8: 'UINT8', bool: 'BOOL', string: 'BYTES',
};

export interface OnnxConfig {
  /** Threads inside one operator; 1 by default so replicas scale by processes. */
  intra_op_threads?: number;
}

export class OnnxWrapper implements ModelWrapper {
  readonly kind = 'onnx';

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
    private readonly inputDType: DType,
    /** Shape of one row as the model declares it, when fully known. */
    private readonly rowShape: number[] | undefined,
  ) {}

  static async load(file: string, config: OnnxConfig, log: Logger): Promise<OnnxWrapper> {
    const threads = typeof config.intra_op_threads === 'number' ? config.intra_op_threads : 1;
    const session = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
    const input = session.inputMetadata[0];
    const output = session.outputMetadata[0];
    if (!input || !output || !input.isTensor) throw new ClipperError('CLIPPER_ERR_MODEL_FAILED', `${file}: model needs one tensor input and an output`);
    const inputDType = ORT_TO_DTYPE[input.type];
    if (!inputDType) throw new ClipperError('CLIPPER_ERR_MODEL_FAILED', `${file}: unsupported input type ${input.type}`);
    const dims = input.shape.slice(1);
    const rowShape = dims.every((d): d is number => typeof d === 'number' && d > 0) ? dims : undefined;
    const wrapper = new OnnxWrapper(session, input.name, output.name, inputDType, rowShape);
    log.info({ file, input: input.name, inputType: input.type, inputShape: input.shape, output: output.name, threads }, 'onnx model loaded');
    const row = wrapper.sampleRow();
    if (row) await wrapper.predict([row]);
    return wrapper;
  }

  sampleRow(): Tensor | undefined {
    if (!this.rowShape || this.inputDType === 'BYTES') return undefined;
    return fromNumbers(this.inputDType, new Array(elementCount(this.rowShape)).fill(0), this.rowShape);
  }

  async predict(inputs: readonly Tensor[]): Promise<RowResult[]> {
    // A row the model cannot take fails alone; the rest of the batch still runs.
    const results: RowResult[] = new Array(inputs.length);
    const rows: Tensor[] = [];
    const positions: number[] = [];
    inputs.forEach((t, i) => {
      try {
        rows.push(this.conform(t));
        positions.push(i);
      } catch (err) {
        results[i] = ClipperError.from(err, 'CLIPPER_ERR_INPUT_SHAPE');
      }
    });
    if (rows.length > 0) {
      const outputs = await this.run(rows);
      outputs.forEach((o, k) => (results[positions[k]!] = o));
    }
    return results;
  }

  private async run(rows: Tensor[]): Promise<Tensor[]> {
    const batch = stack(rows);
    const feed = new ort.Tensor(ortTypeOf(this.inputDType), typedView(batch), batch.shape);
    const results = await this.session.run({ [this.inputName]: feed });
    const out = results[this.outputName];
    if (!out) throw new ClipperError('CLIPPER_ERR_MODEL_FAILED', `model returned no ${this.outputName}`);
    const dtype = ORT_TO_DTYPE[out.type];
    if (!dtype || dtype === 'BYTES') throw new ClipperError('CLIPPER_ERR_MODEL_FAILED', `unsupported output type ${out.type}`);
    const data = out.data as ArrayBufferView;
    const tensor: Tensor = { dtype, shape: [...out.dims], data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    if (tensor.shape[0] !== rows.length) throw new ClipperError('CLIPPER_ERR_MODEL_FAILED', `model returned ${tensor.shape[0]} rows for ${rows.length} inputs`);
    return unstack(tensor);
  }

  /** Converts a row to the model's dtype and declared shape (same element count). */
  private conform(t: Tensor): Tensor {
    let row = t;
    if (row.dtype !== this.inputDType) {
      if (this.inputDType === 'BYTES' || row.dtype === 'BYTES') throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', `model takes ${this.inputDType}, got ${row.dtype}`);
      row = fromNumbers(this.inputDType, toNumbers(row), row.shape);
    }
    if (this.rowShape && row.shape.join(',') !== this.rowShape.join(',')) {
      if (elementCount(row.shape) !== elementCount(this.rowShape)) {
        throw new ClipperError('CLIPPER_ERR_INPUT_SHAPE', `model takes rows of shape [${this.rowShape}], got [${row.shape}]`);
      }
      row = { ...row, shape: this.rowShape };
    }
    return row;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

function ortTypeOf(dtype: DType): 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'bool' {
  switch (dtype) {
    case 'FP32': return 'float32';
    case 'FP64': return 'float64';
    case 'INT32': return 'int32';
    case 'INT64': return 'int64';
    case 'UINT8': return 'uint8';
    case 'BOOL': return 'bool';
    case 'BYTES': throw new ClipperError('CLIPPER_ERR_INPUT_TYPE', 'string inputs are not supported by the onnx wrapper');
  }
}

function typedView(t: Tensor): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array {
  const n = elementCount(t.shape);
  switch (t.dtype) {
    case 'FP32': return new Float32Array(t.data.buffer, t.data.byteOffset, n);
    case 'FP64': return new Float64Array(t.data.buffer, t.data.byteOffset, n);
    case 'INT32': return new Int32Array(t.data.buffer, t.data.byteOffset, n);
    case 'INT64': return new BigInt64Array(t.data.buffer, t.data.byteOffset, n);
    default: return new Uint8Array(t.data.buffer, t.data.byteOffset, n);
  }
}
