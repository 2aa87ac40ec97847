/** The controller's flags, parsed with the webhook's Config (no client-node import here). */
import { hostname } from "node:os";
import { parseDuration } from "../../shared/duration.ts";
import { err, ok, type Result } from "../../shared/errors.ts";

export interface ControllerOptions {
  /** Kubeconfig file; undefined: $KUBECONFIG, ~/.kube/config, or in-cluster. */
  readonly kubeconfig: string | undefined;
  readonly metricsSource: "builtin" | "prometheus";
  readonly prometheusUrl: string | undefined;
  /** 0: never scale down the old Deployments after a promotion. */
  readonly scaleDownDelayMs: number;
  /** This replica's Lease identity (default: $POD_NAME, else host-pid). */
  readonly identity: string;
}

/** Added to the webhook's parseArgs options. */
export const CONTROLLER_FLAGS = {
  kubeconfig: { type: "string" },
  "metrics-source": { type: "string" },
  "prometheus-url": { type: "string" },
  "scale-down-delay": { type: "string" },
  "leader-identity": { type: "string" },
} as const;

export const CONTROLLER_USAGE = `  --kubeconfig FILE             cluster for the controller (default $KUBECONFIG, ~/.kube/config, in-cluster)
  --metrics-source SRC          builtin|prometheus: where canary analysis reads numbers (default builtin)
  --prometheus-url URL          Prometheus base URL (implies --metrics-source prometheus)
  --scale-down-delay DUR        after a promotion, scale the old Deployments to 0 after DUR (default 0: never)
  --leader-identity NAME        this replica's name in the leader Lease (default $POD_NAME or host-pid)
`;

export function parseControllerOptions(
  get: (flag: keyof typeof CONTROLLER_FLAGS) => string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Result<ControllerOptions> {
  const prometheusUrl = get("prometheus-url");
  const source = get("metrics-source") ?? (prometheusUrl ? "prometheus" : "builtin");
  if (source !== "builtin" && source !== "prometheus") {
    return err(`--metrics-source ${source}: use builtin or prometheus`);
  }
  if (source === "prometheus" && !prometheusUrl) {
    return err(
      "--metrics-source prometheus needs --prometheus-url, e.g. http://prometheus.monitoring:9090",
    );
  }
  if (prometheusUrl && !/^https?:\/\/[^\s/]+/.test(prometheusUrl)) {
    return err(`--prometheus-url ${prometheusUrl}: use a URL such as http://prometheus:9090`);
  }
  const scaleDownDelay = parseDuration(get("scale-down-delay") ?? "0");
  if (!scaleDownDelay.ok) return err(`--scale-down-delay: ${scaleDownDelay.error}`);
  const scaleDownDelayMs = scaleDownDelay.value;
  return ok(
    Object.freeze({
      kubeconfig: get("kubeconfig"),
      metricsSource: source,
      prometheusUrl,
      scaleDownDelayMs,
      identity: get("leader-identity") ?? env.POD_NAME ?? `${hostname()}-${process.pid}`,
    }),
  );
}
