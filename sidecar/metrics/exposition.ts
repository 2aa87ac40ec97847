/**
 * Prometheus text exposition 0.0.4, written by hand for the proxy's fixed series. prom-client
 * costs +8.6 MB RSS under Bun (measured) against a 32 MB idle target, and the proxy needs
 * four counter families, one histogram and one gauge: the format for those fits here.
 * Output is byte-compatible with prom-client's (same HELP/TYPE lines, label order, value
 * formatting, blank line between families); sidecar/metrics/metrics.test.ts compares them.
 * Format: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** HELP text escapes backslash and newline only (a double quote is literal there). */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Label values also escape the double quote that would end them. */
export function escapeLabelValue(value: string): string {
  return escapeHelp(value).replace(/"/g, '\\"');
}

/** Go's ParseFloat reads JavaScript's number formatting, except for the infinities and NaN. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return `${value}`;
}

/** `a="x",b="y"` (no braces) so callers can prepend `le` or append a varying label. */
export function labelPairs(labels: readonly (readonly [string, string])[]): string {
  return labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",");
}

export type MetricType = "counter" | "gauge" | "histogram";

/** One family: its HELP and TYPE lines, then its samples (none for an unused counter). */
export function family(name: string, help: string, type: MetricType, samples: string[]): string {
  return [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`, ...samples].join("\n");
}

/** Families are separated by a blank line and the exposition ends with a newline. */
export function exposition(families: readonly string[]): string {
  return `${families.join("\n\n")}\n`;
}

/**
 * A counter family whose labels are fixed except the last one, whose values come from a
 * bounded set (routing-table versions, error kinds). A series appears once incremented,
 * as a labelled prom-client counter's does; escaping waits for the scrape.
 */
export class KeyedCounter {
  readonly name: string;
  readonly help: string;
  private readonly key: string;
  private readonly prefix: string;
  private readonly counts = new Map<string, number>();

  constructor(
    name: string,
    help: string,
    fixed: readonly (readonly [string, string])[],
    key: string,
  ) {
    this.name = name;
    this.help = help;
    this.key = key;
    this.prefix = labelPairs(fixed);
  }

  inc(value: string): void {
    this.counts.set(value, (this.counts.get(value) ?? 0) + 1);
  }

  render(): string {
    const samples: string[] = [];
    for (const [value, n] of this.counts) {
      const labels = [this.prefix, labelPairs([[this.key, value]])].filter(Boolean).join(",");
      samples.push(`${this.name}{${labels}} ${formatValue(n)}`);
    }
    return family(this.name, this.help, "counter", samples);
  }
}

/**
 * A single-series histogram for the hot path: observe() is a bucket search and three adds
 * into preallocated storage, nothing allocated. Rendered as prom-client renders its
 * Histogram: cumulative `_bucket` series with `le` first, then `+Inf`, `_sum`, `_count`.
 */
export class ServedHistogram {
  readonly name: string;
  readonly help: string;
  private readonly bounds: Float64Array;
  private readonly counts: Float64Array;
  private readonly labels: string;
  private sum = 0;
  private count = 0;

  constructor(
    name: string,
    help: string,
    buckets: readonly number[],
    labels: readonly (readonly [string, string])[],
  ) {
    this.name = name;
    this.help = help;
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
    this.counts = new Float64Array(this.bounds.length);
    this.labels = labelPairs(labels);
  }

  observe(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    // Above the last bound only +Inf (the count) holds it.
    if (i < b.length) this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }

  render(): string {
    const samples: string[] = [];
    const bucket = `${this.name}_bucket`;
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += this.counts[i]!;
      const le = formatValue(this.bounds[i]!);
      samples.push(`${bucket}{le="${le}",${this.labels}} ${formatValue(acc)}`);
    }
    samples.push(`${bucket}{le="+Inf",${this.labels}} ${formatValue(this.count)}`);
    samples.push(`${this.name}_sum{${this.labels}} ${formatValue(this.sum)}`);
    samples.push(`${this.name}_count{${this.labels}} ${formatValue(this.count)}`);
    return family(this.name, this.help, "histogram", samples);
  }
}
