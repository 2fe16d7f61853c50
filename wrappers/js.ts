/**
 * The `js` wrapper: an ES module exporting `predict(inputs)`. `inputs` is the batch as an array of
 * per-query inputs (a typed array for numeric inputs; a string, or string array, for BYTES); it
 * returns, or resolves to, an array of per-query outputs of the same length: number arrays, typed
 * arrays, numbers or strings.
 */
import { pathToFileURL } from 'node:url';
import { ClipperError } from '../shared/errors.js';
import type { Logger } from '../shared/logging.js';
import { fromNumbers, fromStrings, fromTypedArray, toStrings, toTypedArray, type NumericArray, type Tensor } from '../shared/tensor.js';
import type { ModelWrapper, RowResult } from './mod.js';

type JsInput = NumericArray | string | string[];
type JsOutput = unknown;
interface JsModel {
  predict(inputs: JsInput[]): JsOutput[] | Promise<JsOutput[]>;
  close?(): void | Promise<void>;
}

export class JsWrapper implements ModelWrapper {
  readonly kind = 'js';

  private constructor(private readonly model: JsModel) {}

  static async load(file: string, log: Logger): Promise<JsWrapper> {
    const mod = (await import(pathToFileURL(file).href)) as Partial<JsModel>;
    if (typeof mod.predict !== 'function') throw new ClipperError('CLIPPER_ERR_MODEL_FAILED', `${file} does not export a predict(inputs) function`);
    log.info({ file }, 'js model loaded');
    return new JsWrapper(mod as JsModel);
  }

  async predict(inputs: readonly Tensor[]): Promise<RowResult[]> {
    const args = inputs.map(toJsInput);
    const outputs = await this.model.predict(args);
    if (!Array.isArray(outputs) || outputs.length !== inputs.length) {
      throw new ClipperError('CLIPPER_ERR_MODEL_FAILED', `predict returned ${Array.isArray(outputs) ? outputs.length : typeof outputs} outputs for ${inputs.length} inputs`);
    }
    return outputs.map((out, i) => {
      try {
        return toTensor(out, i);
      } catch (err) {
        return ClipperError.from(err, 'CLIPPER_ERR_MODEL_FAILED');
      }
    });
  }

  async close(): Promise<void> {
    await this.model.close?.();
  }
}

function toJsInput(t: Tensor): JsInput {
  if (t.dtype !== 'BYTES') return toTypedArray(t);
  const strings = toStrings(t);
  return t.shape.length === 0 ? strings[0]! : strings;
}

function toTensor(out: unknown, i: number): Tensor {
  if (typeof out === 'number') return fromNumbers('FP64', [out], []);
  if (typeof out === 'string') return fromStrings([out], []);
  if (out instanceof Float32Array) return fromTypedArray('FP32', out);
  if (out instanceof Float64Array) return fromTypedArray('FP64', out);
  if (out instanceof Int32Array) return fromTypedArray('INT32', out);
  if (out instanceof Uint8Array) return fromTypedArray('UINT8', out);
  if (Array.isArray(out) && out.every((x) => typeof x === 'number')) return fromNumbers('FP64', out as number[]);
  if (Array.isArray(out) && out.every((x) => typeof x === 'string')) return fromStrings(out as string[]);
  throw new ClipperError('CLIPPER_ERR_MODEL_FAILED', `output ${i} is neither numbers nor strings`);
}
