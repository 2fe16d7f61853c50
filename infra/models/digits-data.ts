// Loader for infra/models/data/digits.csv.gz (UCI optdigits, the scikit-learn
// copy): gzip'd CSV, no header, 64 pixel counts in 0..16 then the label 0..9.

import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';

export const DIGITS_FEATURES = 64;
export const DIGITS_CLASSES = 10;
export const DIGITS_PIXEL_MAX = 16;
/** Training divides pixels by 16; the ONNX graph does the same, so clients send raw pixels. */
export const DIGITS_PIXEL_SCALE = 1 / DIGITS_PIXEL_MAX;

export interface DigitsDataset {
  /** Raw pixel counts 0..16, one 64-element row per image. */
  readonly pixels: Float32Array[];
  /** Digit labels 0..9. */
  readonly labels: Int32Array;
}

function parseIntInRange(field: string, min: number, max: number, where: string): number {
  const value = Number(field);
  if (field.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${where}: expected an integer in ${min}..${max}, got "${field}"`);
  }
  return value;
}

/** Parses the CSV text; throws with the line number on any malformed row. */
export function parseDigitsCsv(text: string): DigitsDataset {
  const pixels: Float32Array[] = [];
  const labels: number[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, idx) => {
    if (line.trim() === '') return;
    const fields = line.split(',');
    const where = `digits line ${idx + 1}`;
    if (fields.length !== DIGITS_FEATURES + 1) {
      throw new RangeError(`${where}: expected ${DIGITS_FEATURES + 1} fields, got ${fields.length}`);
    }
    const row = new Float32Array(DIGITS_FEATURES);
    for (let i = 0; i < DIGITS_FEATURES; i++) row[i] = parseIntInRange(fields[i]!, 0, DIGITS_PIXEL_MAX, where);
    pixels.push(row);
    labels.push(parseIntInRange(fields[DIGITS_FEATURES]!, 0, DIGITS_CLASSES - 1, where));
  });
  return { pixels, labels: Int32Array.from(labels) };
}

export async function loadDigits(path: string): Promise<DigitsDataset> {
  const compressed = await readFile(path);
  return parseDigitsCsv(gunzipSync(compressed).toString('utf8'));
}

/** Pixels scaled to [0, 1] exactly as the exported graph scales them (×1/16 is exact in float32). */
export function scalePixels(row: ArrayLike<number>): Float32Array {
  const out = new Float32Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i]! * DIGITS_PIXEL_SCALE;
  return out;
}
