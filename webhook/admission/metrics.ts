/**
 * Admission metrics on a registry the caller owns (the controller registers on the same one,
 * and tests can run several servers in one process). Labels come from fixed sets only:
 * outcome, reason code, error code.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface AdmissionMetrics {
  requests: Counter<"outcome" | "reason">;
  skips: Counter<"reason">;
  errors: Counter<"code">;
  duration: Histogram<"outcome">;
}

export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function createAdmissionMetrics(registry: Registry): AdmissionMetrics {
  return {
    requests: new Counter({
      name: "verso_webhook_admission_requests_total",
      help: "Admission requests by outcome (injected, skipped, error, rejected) and reason code",
      labelNames: ["outcome", "reason"],
      registers: [registry],
    }),
    skips: new Counter({
      name: "verso_webhook_injection_skips_total",
      help: "Pods admitted without the proxy, by reason code (one count per reason)",
      labelNames: ["reason"],
      registers: [registry],
    }),
    errors: new Counter({
      name: "verso_webhook_admission_errors_total",
      help: "Internal errors while mutating (the pod was admitted without the proxy)",
      labelNames: ["code"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "verso_webhook_admission_duration_seconds",
      help: "Time to answer an admission request, from body parsed to response written",
      labelNames: ["outcome"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}
