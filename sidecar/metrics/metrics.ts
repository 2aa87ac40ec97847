/**
 * The proxy's Prometheus series (names in shared/metric-names.ts), rendered by hand
 * (exposition.ts says why not prom-client). Label values come only from fixed or bounded
 * sets: the served version is always this pod's version, targets come from the routing
 * table, method and status are classes, error kinds are an enum.
 */
import { DURATION_BUCKETS, METRIC, type ServedSource } from "../../shared/metric-names.ts";
import {
  exposition,
  family,
  formatValue,
  KeyedCounter,
  labelPairs,
  ServedHistogram,
} from "./exposition.ts";
import { processFamilies } from "./process.ts";

export { METRICS_CONTENT_TYPE } from "./exposition.ts";

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

export interface ProxyMetrics {
  /** Count one request served here; seconds from arrival to the end of the response. */
  served(method: MethodClass, code: CodeClass, source: ServedSource, seconds: number): void;
  forwarded(target: string): void;
  retried(target: string): void;
  fellBack(wanted: string): void;
  upstreamError(kind: UpstreamErrorKind): void;
  setRevision(revision: number): void;
  /** The release `version` was cut off after consecutive failures (on), or the cut lifted. */
  cutOff(version: string, on: boolean): void;
  /** Access log lines lost because stdout did not take them in time. */
  accessLogDropped(lines: number): void;
  /** Every series as Prometheus text exposition 0.0.4 (serve with METRICS_CONTENT_TYPE). */
  render(): string;
}

export interface MetricsOptions {
  /** The access log is on: its dropped-lines counter is exported (at 0 from the start). */
  readonly accessLog?: boolean;
}

export function createMetrics(
  app: string,
  selfVersion: string,
  opts: MetricsOptions = {},
): ProxyMetrics {
  // The hot path only bumps a slot in a typed array: no label hashing, no allocation
  // (prom-client's per-call label hashing once cost ~10% of the proxy's CPU per request).
  // Slots: method x code class x source = 50, a fixed label set, formatted once here.
  const served = new Float64Array(METHODS.length * CODES.length * SOURCES.length);
  const slotLabels = METHODS.flatMap((method) =>
    CODES.flatMap((code_class) =>
      SOURCES.map((source) =>
        labelPairs([
          ["app", app],
          ["version", selfVersion],
          ["method", method],
          ["code_class", code_class],
          ["source", source],
        ]),
      ),
    ),
  );
  const duration = new ServedHistogram(
    METRIC.duration,
    "Time from arrival at the serving proxy to the end of the response, seconds.",
    DURATION_BUCKETS,
    [
      ["app", app],
      ["version", selfVersion],
    ],
  );
  const byLabel = (name: string, help: string, label: string): KeyedCounter =>
    new KeyedCounter(name, help, [["app", app]], label);
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
  const appLabel = labelPairs([["app", app]]);
  const cutoffs = byLabel(
    METRIC.cutoffs,
    "Release cut-offs after consecutive failures.",
    "version",
  );
  /** The release version last cut off or watched, and whether it is cut now. */
  let cutVersion: string | undefined;
  let cutNow = false;
  // -1 until the first routing table: the gauge is always present, unlike the counters.
  let revision = -1;
  let accessLogDropped = 0;

  const renderRequests = (): string => {
    const samples: string[] = [];
    for (let i = 0; i < served.length; i++) {
      // Only series counted at least once, as a labelled prom-client counter shows them.
      if (served[i]! > 0) {
        samples.push(`${METRIC.requests}{${slotLabels[i]!}} ${formatValue(served[i]!)}`);
      }
    }
    return family(
      METRIC.requests,
      "Requests served by this proxy's app, by the version that served them.",
      "counter",
      samples,
    );
  };

  const renderCutoff = (version: string): string =>
    family(
      METRIC.cutoff,
      "1 while this proxy keeps new requests off the release after consecutive failures.",
      "gauge",
      [
        `${METRIC.cutoff}{${labelPairs([
          ["app", app],
          ["version", version],
        ])}} ${cutNow ? 1 : 0}`,
      ],
    );

  return {
    served(method, code, source, seconds) {
      // The order slotLabels is built in: method, then code class, then source.
      const slot =
        (METHOD_INDEX[method] * CODES.length + CODE_INDEX[code]) * SOURCES.length +
        SOURCE_INDEX[source];
      served[slot]!++;
      duration.observe(seconds);
    },
    forwarded: (target) => forwards.inc(target),
    retried: (target) => retries.inc(target),
    fellBack: (wanted) => fallbacks.inc(wanted),
    upstreamError: (kind) => upstreamErrors.inc(kind),
    setRevision: (r) => {
      revision = r;
    },
    accessLogDropped: (lines) => {
      accessLogDropped += lines;
    },
    cutOff(version, on) {
      cutVersion = version;
      cutNow = on;
      if (on) cutoffs.inc(version);
    },
    render: () =>
      exposition([
        ...processFamilies(),
        renderRequests(),
        duration.render(),
        forwards.render(),
        retries.render(),
        fallbacks.render(),
        upstreamErrors.render(),
        // Absent until the first cut-off, so tables without one render as they always did.
        ...(cutVersion === undefined ? [] : [cutoffs.render(), renderCutoff(cutVersion)]),
        family(
          METRIC.revision,
          "Revision of the routing table in force (-1: none yet, serving locally).",
          "gauge",
          [`${METRIC.revision}{${appLabel}} ${formatValue(revision)}`],
        ),
        // Only with the access log on (so proxies without one render as they always did),
        // and then from 0, so rate() and alerts see it before the first drop.
        ...(opts.accessLog
          ? [
              family(
                METRIC.accessLogDropped,
                "Access log lines dropped because stdout did not take them in time.",
                "counter",
                [`${METRIC.accessLogDropped}{${appLabel}} ${formatValue(accessLogDropped)}`],
              ),
            ]
          : []),
      ]),
  };
}
