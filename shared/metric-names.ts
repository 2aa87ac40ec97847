/**
 * Names of the proxy's Prometheus series. The controller's built-in analysis and the PromQL
 * it issues read these; keep them in one place so the two sides cannot drift.
 */
export const METRIC = {
  /** counter {app, version, method, code_class, source} — counted where the request is served. */
  requests: "verso_requests_total",
  /** histogram {app, version} seconds, where served. */
  duration: "verso_request_duration_seconds",
  /** counter {app, target} requests forwarded to a peer. */
  forwards: "verso_forwards_total",
  /** counter {app, target} retries on another peer after a connect failure. */
  retries: "verso_retries_total",
  /** counter {app, version} requests served locally because no peer of the target answered. */
  fallbacks: "verso_fallbacks_total",
  /** counter {app, kind} upstream (app or peer) errors. */
  upstreamErrors: "verso_upstream_errors_total",
  /**
   * gauge {app, version} 1 while this proxy has cut the release version off after
   * `cutoffFailures` consecutive failures (the controller polls it and rolls back).
   */
  cutoff: "verso_release_cutoff",
  /** counter {app, version} cut-offs this proxy made. */
  cutoffs: "verso_cutoffs_total",
  /** gauge {app} revision of the routing table in force. */
  revision: "verso_routing_table_revision",
  /**
   * counter {app} access log lines dropped because stdout did not take them in time (the
   * buffer was full); present only on proxies with the access log on.
   */
  accessLogDropped: "verso_access_log_dropped_total",
} as const;

/** `source` label: the request was served where it landed, or arrived forwarded by a peer. */
export type ServedSource = "local" | "forwarded";

/** Latency buckets (seconds), fine enough under 1s for p99 gates such as 100ms or 500ms. */
export const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3,
  5, 10,
];

/** The controller's own release series, on the webhook's `/metrics` (docs/controller.md). */
export const CONTROLLER_METRIC = {
  /** gauge {namespace, app, version, kind="desired"|"actual"} percent. */
  weight: "verso_release_weight",
  /** gauge {namespace, app, version, phase} 1 for the current phase, 0 for the others. */
  phase: "verso_release_phase",
  /** histogram {namespace, app, reason} seconds from the failing signal to weight 0 written. */
  rollbackSeconds: "verso_release_rollback_seconds",
  /** counter {namespace, app} reconciles that failed (retried with backoff). */
  reconcileErrors: "verso_release_reconcile_errors_total",
  /** gauge {namespace, app, version, strategy} 1 while the release exists. */
  info: "verso_release_info",
  /** gauge {namespace, app, version} the automated canary's step or the preview's analysis interval (1-based; 0: none). */
  step: "verso_release_step",
  /**
   * gauge {namespace, app, version, gate, kind="value"|"threshold"}: the last analysis, per
   * gate (`error_rate` percent, `p99_ms`, `p99_ratio`, `requests`): what was measured and the
   * policy's limit (`requests`: the minimum).
   */
  analysis: "verso_release_analysis",
} as const;
