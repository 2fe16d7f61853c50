/** Clipper's default policy: the first linked model answers; nothing learned. */
import type { Tensor } from '../../shared/tensor.js';
import { modelKey, type Combined, type CorrectionPolicy, type ModelRef, type PolicyContext } from './types.js';

export class SinglePolicy implements CorrectionPolicy<null> {
  readonly name = 'single';
  readonly stateless = true;

  initialState(): null {
    return null;
  }

  select(ctx: PolicyContext): ModelRef[] {
    return ctx.models.slice(0, 1);
  }

  combine(ctx: PolicyContext, _state: null, _selected: readonly ModelRef[], outputs: ReadonlyMap<string, Tensor>): Combined | undefined {
    const chosen = ctx.models[0];
    const output = chosen && outputs.get(modelKey(chosen));
    return chosen && output ? { output, models: [modelKey(chosen)], confidence: 1 } : undefined;
  }

  update(): null {
    return null;
  }
}
