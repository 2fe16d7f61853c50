// Simulated accelerator for scale-out benchmarks: every batch, whatever its size, takes a fixed
// time (5 ms, or SIM_BATCH_MS), spent waiting on a timer rather than on the CPU, the way a host
// waits for a GPU. Replicas therefore add capacity even on a machine with few cores.
//
// JS model wrapper contract: `predict(inputs)` gets one batch as an array with one element per query
// (typed arrays here) and resolves to one output per query, in order. Each output is `[sum of the
// input]`, so a caller can check that answers match queries.

const raw = process.env.SIM_BATCH_MS;
const BATCH_MS = raw === undefined || raw === '' ? 5 : Number(raw);
if (!Number.isFinite(BATCH_MS) || BATCH_MS < 0) throw new RangeError(`SIM_BATCH_MS must be a number ≥ 0, got ${raw}`);

/**
 * @param {ReadonlyArray<ArrayLike<number>>} inputs
 * @returns {Promise<number[][]>}
 */
export async function predict(inputs) {
  if (!Array.isArray(inputs)) throw new TypeError('predict(inputs): inputs must be an array, one element per query');
  const outputs = inputs.map((x) => {
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += Number(x[i]);
    return [sum];
  });
  await new Promise((resolve) => setTimeout(resolve, BATCH_MS));
  return outputs;
}
