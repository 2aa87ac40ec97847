/**
 * The proxy's Prometheus series (names in shared/metric-names.ts). Label values come only from
 * fixed sets: the served version is always this pod's version, targets come from the routing
 * table, method and status are classes. Children are cached so the hot path does one map
 * lookup and one increment.
 */
import type { Counter as CounterType, Metric, Registry as RegistryType } from "prom-client";
import { DURATION_BUCKETS, METRIC, type ServedSource } from "../../shared/metric-names.ts";
import { ServedHistogram } from "./histogram.ts";
import { collectProcessMetrics, Counter, Gauge, Registry } from "./prom.ts";

export type MethodClass = "GET" | "POST" | "PUT" | "DELETE" | "other";
export type CodeClass = "1xx" | "2xx" | "3xx" | "4xx" | "5xx";
export type UpstreamErrorKind =
  | "app-connect"
  | "app-reset"
  | "app-timeout"
  | "peer-connect"
  | "peer-reset"
  | "peer-timeout"
  | "other";

export function methodClass(method: string | undefined): MethodClass {
  switch (method) {
    case "GET":
    case "POST":
    case "PUT":
    case "DELETE":
      return method;
    default:
      return "other";
  }
}

const CODE_CLASSES: readonly CodeClass[] = ["1xx", "1xx", "2xx", "3xx", "4xx", "5xx"];
export function codeClass(status: number): CodeClass {
  const i = Math.floor(status / 100);
  return CODE_CLASSES[i] ?? "5xx";
}

const METHODS: readonly MethodClass[] = ["GET", "POST", "PUT", "DELETE", "other"];
const CODES: readonly CodeClass[] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const SOURCES: readonly ServedSource[] = ["local", "forwarded"];
const indexOf = <T extends string>(list: readonly T[]) =>
  Object.fromEntries(list.map((v, i) => [v, i])) as Record<T, number>;
const METHOD_INDEX = indexOf(METHODS);
const CODE_INDEX = indexOf(CODES);
const SOURCE_INDEX = indexOf(SOURCES);

interface CounterChild {
  inc(n?: number): void;
}

export interface ProxyMetrics {
  readonly registry: RegistryType;
  /** Count one request served here; seconds from arrival to the end of the response. */
  served(method: MethodClass, code: CodeClass, source: ServedSource, seconds: number): void;
  forwarded(target: string): void;
  retried(target: string): void;
  fellBack(wanted: string): void;
  upstreamError(kind: UpstreamErrorKind): void;
  setRevision(revision: number): void;
}

export function createMetrics(app: string, selfVersion: string): ProxyMetrics {
  const registry = new Registry();
  collectProcessMetrics(registry);
  // The hot path only bumps a slot in a typed array; prom-client sees the totals at scrape
  // time (collect). Measured: prom-client's per-call label hashing cost ~10% of the proxy's
  // CPU per request. Slots: method x code class x source = 50, a fixed label set.
  const pending = new Float64Array(METHODS.length * CODES.length * SOURCES.length);
  const slotLabels = METHODS.flatMap((method) =>
    CODES.flatMap((code_class) =>
      SOURCES.map((source) => ({ app, version: selfVersion, method, code_class, source })),
    ),
  );
  new Counter({
    name: METRIC.requests,
    help: "Requests served by this proxy's app, by the version that served them.",
    labelNames: ["app", "version", "method", "code_class", "source"],
    registers: [registry],
    collect() {
      for (let i = 0; i < pending.length; i++) {
        if (pending[i]! > 0) {
          this.inc(slotLabels[i]!, pending[i]!);
          pending[i] = 0;
        }
      }
    },
  });
  const duration = new ServedHistogram({
    name: METRIC.duration,
    help: "Time from arrival at the serving proxy to the end of the response, seconds.",
    buckets: DURATION_BUCKETS,
    labels: { app, version: selfVersion },
  });
  // The registry formats whatever get() returns; its Metric type wants a full prom-client class.
  registry.registerMetric(duration as unknown as Metric<string>);
  const byLabel = (name: string, help: string, label: string): CounterType<string> =>
    new Counter({ name, help, labelNames: ["app", label], registers: [registry] });
  const forwards = byLabel(
    METRIC.forwards,
    "Requests forwarded to a peer of another version.",
    "target",
  );
  const retries = byLabel(
    METRIC.retries,
    "Retries on another peer after a peer refused or reset before any body was sent.",
    "target",
  );
  const fallbacks = byLabel(
    METRIC.fallbacks,
    "Requests served locally because no peer of the wanted version answered.",
    "version",
  );
  const upstreamErrors = byLabel(
    METRIC.upstreamErrors,
    "Errors talking to the local app or a peer, by kind.",
    "kind",
  );
  const revision = new Gauge({
    name: METRIC.revision,
    help: "Revision of the routing table in force (-1: none yet, serving locally).",
    labelNames: ["app"],
    registers: [registry],
  });
  revision.labels(app).set(-1);

  const keyed = (cache: Map<string, CounterChild>, c: CounterType<string>, label: string) => {
    let child = cache.get(label);
    if (!child) {
      child = c.labels(app, label);
      cache.set(label, child);
    }
    return child;
  };
  const fwd = new Map<string, CounterChild>();
  const rty = new Map<string, CounterChild>();
  const fb = new Map<string, CounterChild>();
  const ue = new Map<string, CounterChild>();

  return {
    registry,
    served(method, code, source, seconds) {
      // The order slotLabels is built in: method, then code class, then source.
      const slot =
        (METHOD_INDEX[method] * CODES.length + CODE_INDEX[code]) * SOURCES.length +
        SOURCE_INDEX[source];
      pending[slot]!++;
      duration.observe(seconds);
    },
    forwarded: (target) => keyed(fwd, forwards, target).inc(),
    retried: (target) => keyed(rty, retries, target).inc(),
    fellBack: (wanted) => keyed(fb, fallbacks, wanted).inc(),
    upstreamError: (kind) => keyed(ue, upstreamErrors, kind).inc(),
    setRevision: (r) => revision.labels(app).set(r),
  };
}
