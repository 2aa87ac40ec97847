/** The controller's flags, parsed with the webhook's Config (no client-node import here). */
import { hostname } from "node:os";
import { err, ok, type Result } from "../../shared/errors.ts";
import { parseFlagDuration } from "../flagDuration.ts";

export interface ControllerOptions {
  /** Kubeconfig file; undefined: $KUBECONFIG, ~/.kube/config, or in-cluster. */
  readonly kubeconfig: string | undefined;
  readonly metricsSource: "builtin" | "prometheus";
  readonly prometheusUrl: string | undefined;
  /** 0: never scale down the old Deployments after a promotion. */
  readonly scaleDownDelayMs: number;
  /** This replica's Lease identity (default: $POD_NAME, else host-pid). */
  readonly identity: string;
  /** Generic JSON notification receivers (`--notify-url`, comma-separated for several). */
  readonly notifyUrls: readonly string[];
  /** Slack incoming-webhook URL (`--notify-slack-url`). */
  readonly notifySlackUrl: string | undefined;
}

/** Added to the webhook's parseArgs options. */
export const CONTROLLER_FLAGS = {
  kubeconfig: { type: "string" },
  "metrics-source": { type: "string" },
  "prometheus-url": { type: "string" },
  "scale-down-delay": { type: "string" },
  "leader-identity": { type: "string" },
  "notify-url": { type: "string" },
  "notify-slack-url": { type: "string" },
} as const;

export const CONTROLLER_USAGE = `  --kubeconfig FILE             cluster for the controller (default $KUBECONFIG, ~/.kube/config, in-cluster)
  --metrics-source SRC          builtin|prometheus: where canary analysis reads numbers (default builtin)
  --prometheus-url URL          Prometheus base URL (implies --metrics-source prometheus)
  --scale-down-delay DUR        after a promotion, scale the old Deployments to 0 after DUR (default 0: never)
  --leader-identity NAME        this replica's name in the leader Lease (default $POD_NAME or host-pid)
  --notify-url URL[,URL]        POST release notifications as JSON here (Teams/Discord bridges too)
  --notify-slack-url URL        POST release notifications as a Slack incoming-webhook payload
`;

export function parseControllerOptions(
  get: (flag: keyof typeof CONTROLLER_FLAGS) => string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  /** Told each old flag spelling used (the caller logs them once at start). */
  deprecated: (message: string) => void = () => {},
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
  const scaleDownDelay = parseFlagDuration("scale-down-delay", get("scale-down-delay") ?? "0");
  if (!scaleDownDelay.ok) return scaleDownDelay;
  if (scaleDownDelay.value.deprecation) deprecated(scaleDownDelay.value.deprecation);
  const scaleDownDelayMs = scaleDownDelay.value.ms;
  const notifyUrls = (get("notify-url") ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
  const notifySlackUrl = get("notify-slack-url");
  for (const [flag, url] of [
    ...notifyUrls.map((u) => ["--notify-url", u] as const),
    ...(notifySlackUrl ? [["--notify-slack-url", notifySlackUrl] as const] : []),
  ]) {
    if (!/^https?:\/\/[^\s/]+/.test(url))
      return err(`${flag} ${url}: use an http:// or https:// URL`);
  }
  return ok(
    Object.freeze({
      kubeconfig: get("kubeconfig"),
      metricsSource: source,
      prometheusUrl,
      scaleDownDelayMs,
      identity: get("leader-identity") ?? env.POD_NAME ?? `${hostname()}-${process.pid}`,
      notifyUrls,
      notifySlackUrl,
    }),
  );
}
