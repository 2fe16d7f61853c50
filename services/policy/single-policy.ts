/** Clipper's default policy: the first linked model answers; nothing learned. */
import type { Tensor } from '../../shared/tensor.js';
import { modelKey, type CorrectionPolicy, type ModelRef, type PolicyContext } from './types.js';

export class SinglePolicy implements CorrectionPolicy {
  readonly name = 'single';
  readonly stateless = true;

  select(ctx: PolicyContext): ModelRef[] {
    return ctx.models.slice(0, 1);
  }

  combine(ctx: PolicyContext, outputs: ReadonlyMap<string, Tensor>): { output: Tensor; models: string[] } | undefined {
    const chosen = ctx.models[0];
    const output = chosen && outputs.get(modelKey(chosen));
    return chosen && output ? { output, models: [modelKey(chosen)] } : undefined;
  }
}
