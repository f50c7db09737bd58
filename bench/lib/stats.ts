/** Percentiles and summaries of latency samples. */

/** A summary of samples (same unit as the input). */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  p999: number;
  mean: number;
  max: number;
}

/** The p-quantile (0..1) of sorted samples: the nearest-rank value. */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

/** Summarize samples. */
export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), p999: quantile(s, 0.999), mean, max: s[s.length - 1] ?? NaN };
}

/** The median of a few numbers. */
export function median(values: readonly number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}
