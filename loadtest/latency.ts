/** Latency recording with HDR histograms (microsecond resolution), summarized in milliseconds. */
import hdr from 'hdr-histogram-js';

export interface LatencySummary {
  n: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  mean_ms: number;
}

export class LatencyRecorder {
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });

  /** Records one latency given in microseconds. */
  recordUs(us: number): void {
    this.histogram.recordValue(Math.max(1, Math.round(us)));
  }

  summary(): LatencySummary {
    const h = this.histogram;
    const ms = (us: number): number => Math.round(us) / 1000;
    return {
      n: h.totalCount,
      p50_ms: ms(h.getValueAtPercentile(50)),
      p90_ms: ms(h.getValueAtPercentile(90)),
      p99_ms: ms(h.getValueAtPercentile(99)),
      p999_ms: ms(h.getValueAtPercentile(99.9)),
      max_ms: ms(h.maxValue),
      mean_ms: ms(h.mean),
    };
  }
}

/** Microseconds since `start` (from process.hrtime.bigint()). */
export function elapsedUs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1000;
}
