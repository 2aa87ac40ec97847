/**
 * A single-series histogram for the hot path: observe() is a bucket search and three adds.
 * It registers in a prom-client Registry like any metric (the registry formats what get()
 * returns), so the exposition is prom-client's own, byte for byte the shape of its Histogram:
 * `_bucket{le=...,<labels>}` cumulative, `_sum`, `_count`.
 */
interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export interface ServedHistogramOptions {
  name: string;
  help: string;
  buckets: readonly number[];
  labels: Record<string, string>;
}

export class ServedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram" as const;
  readonly aggregator = "sum" as const;
  private readonly bounds: readonly number[];
  private readonly labels: Record<string, string>;
  private counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(opts: ServedHistogramOptions) {
    this.name = opts.name;
    this.help = opts.help;
    this.bounds = [...opts.buckets].sort((a, b) => a - b);
    this.labels = opts.labels;
    this.counts = new Float64Array(this.bounds.length);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: "histogram";
    values: Sample[];
    aggregator: "sum";
  }> {
    const values: Sample[] = [];
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += this.counts[i]!;
      values.push({
        metricName: `${this.name}_bucket`,
        labels: { le: this.bounds[i]!, ...this.labels },
        value: acc,
      });
    }
    values.push({
      metricName: `${this.name}_bucket`,
      labels: { le: "+Inf", ...this.labels },
      value: this.count,
    });
    values.push({ metricName: `${this.name}_sum`, labels: { ...this.labels }, value: this.sum });
    values.push({
      metricName: `${this.name}_count`,
      labels: { ...this.labels },
      value: this.count,
    });
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    };
  }

  reset(): void {
    this.counts = new Float64Array(this.bounds.length);
    this.sum = 0;
    this.count = 0;
  }
}
