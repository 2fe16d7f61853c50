/** Rounding for what the benches print: figures to one decimal, ratios and shares to two or three. Targets are checked on the exact values. */

export const round1 = (v: number): number => Math.round(v * 10) / 10;
export const round2 = (v: number): number => Math.round(v * 100) / 100;
export const round3 = (v: number): number => Math.round(v * 1000) / 1000;
