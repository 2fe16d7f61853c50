// No-op model for measuring serving overhead: every query predicts [0].
//
// JS model wrapper contract: a model is an ES module exporting
//   async function predict(inputs)
// `inputs` is one batch, an array with one element per query; each element is
// that query's input (Float32Array, Float64Array, Int32Array, Uint8Array, or a
// string). It must resolve to an array of per-query outputs of the same length
// and in the same order; each output is a number array, a typed array, a
// number, or a string.

/**
 * @param {ReadonlyArray<Float32Array | Float64Array | Int32Array | Uint8Array | string>} inputs
 * @returns {Promise<number[][]>}
 */
export async function predict(inputs) {
  if (!Array.isArray(inputs)) throw new TypeError('predict(inputs): inputs must be an array, one element per query');
  // A fresh array per query so a caller that mutates one output cannot affect others.
  return inputs.map(() => [0]);
}
