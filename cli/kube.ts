/**
 * The CLI's only door to the cluster: the Kubernetes API, with the user's own kubeconfig
 * (client-node's KubeConfig does the credentials: certs, tokens, exec plugins), so RBAC is
 * theirs. Thin I/O; every refusal becomes a VersoError with a stable code and a message that
 * names the verb and the resource.
 */
import { request as httpsRequest, type RequestOptions } from "node:https";
import { request as httpRequest } from "node:http";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import {
  KubeConfig,
  type CoreV1Event,
  type V1Deployment,
  type V1Pod,
} from "@kubernetes/client-node";
import { VersoError, type VersoErrorCode } from "../shared/errors.ts";

export interface ConnectOptions {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  namespace?: string | undefined;
}

/** A resource a request acts on, for messages: `patch deployments.apps "shop-v2"`. */
export interface Target {
  verb: "get" | "list" | "patch";
  resource: string;
  namespace?: string | undefined;
  name?: string | undefined;
}

export interface Kube {
  /** The namespace commands act in: -n, else the context's, else "default". */
  readonly namespace: string;
  readonly context: string;
  readonly server: string;
  listDeployments(namespace: string | undefined): Promise<V1Deployment[]>;
  getDeployment(namespace: string, name: string): Promise<V1Deployment>;
  /** Merge patch; with `resourceVersion` the write is refused (CLI_CONFLICT) if it moved. */
  patchDeployment(
    namespace: string,
    name: string,
    patch: { annotations?: Record<string, string | null>; replicas?: number },
    resourceVersion?: string,
  ): Promise<V1Deployment>;
  listPods(namespace: string | undefined, labelSelector: string): Promise<V1Pod[]>;
  listEvents(namespace: string): Promise<CoreV1Event[]>;
  /** GET through the API server's pod proxy subresource (`pods/proxy`): the proxy's /metrics. */
  podMetrics(namespace: string, pod: string, port: number): Promise<string>;
}

const ERROR_CODES: Record<number, VersoErrorCode> = {
  401: "CLI_UNAUTHORIZED",
  403: "CLI_FORBIDDEN",
  404: "CLI_NOT_FOUND",
  409: "CLI_CONFLICT",
};

const describeTarget = (t: Target): string =>
  `${t.verb} ${t.resource}${t.name ? ` ${JSON.stringify(t.name)}` : ""}${
    t.namespace ? ` in namespace ${JSON.stringify(t.namespace)}` : " in every namespace"
  }`;

/** An API refusal -> a VersoError whose message says which verb on which resource. Pure. */
function apiError(status: number, body: string, target: Target): VersoError {
  let apiMessage = body.trim().slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === "string") apiMessage = parsed.message;
  } catch {
    // Not a Status object: keep the text.
  }
  const code = ERROR_CODES[status] ?? "CLI_API";
  const what = describeTarget(target);
  const lead =
    status === 403
      ? `forbidden: you may not ${what}`
      : status === 401
        ? `unauthorized: the API server did not accept your credentials (${what})`
        : status === 404
          ? `not found: ${what}`
          : status === 409
            ? `conflict: ${what} changed meanwhile`
            : `the API server answered ${status} to ${what}`;
  return new VersoError(code, apiMessage ? `${lead} (API server: ${apiMessage})` : lead);
}

/** Load the kubeconfig the way kubectl does: --kubeconfig, $KUBECONFIG, ~/.kube/config, in-cluster. */
function loadKubeConfig(options: ConnectOptions): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig) {
      if (!existsSync(options.kubeconfig))
        throw new VersoError("CLI_NO_KUBECONFIG", `kubeconfig ${options.kubeconfig} not found`);
      kc.loadFromFile(options.kubeconfig);
    } else {
      const fromEnv = process.env.KUBECONFIG;
      const home = join(homedir(), ".kube", "config");
      const inCluster = process.env.KUBERNETES_SERVICE_HOST !== undefined;
      if (!fromEnv && !existsSync(home) && !inCluster)
        throw new VersoError(
          "CLI_NO_KUBECONFIG",
          "no kubeconfig: set KUBECONFIG, pass --kubeconfig FILE, or create ~/.kube/config",
        );
      kc.loadFromDefault();
    }
  } catch (error) {
    if (error instanceof VersoError) throw error;
    throw new VersoError("CLI_NO_KUBECONFIG", `cannot read the kubeconfig: ${String(error)}`, {
      cause: error,
    });
  }
  if (options.context) {
    if (!kc.getContextObject(options.context))
      throw new VersoError(
        "CLI_NO_KUBECONFIG",
        `context ${JSON.stringify(options.context)} is not in the kubeconfig (contexts: ${kc
          .getContexts()
          .map((c) => c.name)
          .join(", ")})`,
      );
    kc.setCurrentContext(options.context);
  }
  return kc;
}

export function connect(options: ConnectOptions): Kube {
  const kc = loadKubeConfig(options);
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new VersoError("CLI_NO_KUBECONFIG", "the kubeconfig's current context has no cluster");
  const context = kc.getCurrentContext();
  const namespace =
    options.namespace ?? kc.getContextObject(context)?.namespace ?? ("default" as string);
  const server = cluster.server.replace(/\/+$/, "");

  async function send(
    method: string,
    path: string,
    target: Target,
    body?: { type: string; data: unknown },
    accept = "application/json",
  ): Promise<string> {
    const url = new URL(server + path);
    const payload = body === undefined ? undefined : JSON.stringify(body.data);
    const opts: RequestOptions = {
      method,
      headers: {
        accept,
        "user-agent": "kubectl-verso",
        ...(payload === undefined
          ? {}
          : { "content-type": body!.type, "content-length": Buffer.byteLength(payload) }),
      },
      timeout: 15_000,
    };
    await kc.applyToHTTPSOptions(opts);
    const doRequest = url.protocol === "http:" ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      const req = doRequest(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(text);
          else reject(apiError(status, text, target));
        });
      });
      req.on("timeout", () => req.destroy(new Error("timed out after 15s")));
      req.on("error", (error) =>
        reject(
          error instanceof VersoError
            ? error
            : new VersoError(
                "CLI_UNREACHABLE",
                `cannot reach the API server ${server}: ${error.message}`,
                { cause: error },
              ),
        ),
      );
      req.end(payload);
    });
  }

  const json = async <T>(
    method: string,
    path: string,
    target: Target,
    body?: { type: string; data: unknown },
  ): Promise<T> => JSON.parse(await send(method, path, target, body)) as T;
  const ns = (namespace: string | undefined): string =>
    namespace === undefined ? "" : `/namespaces/${encodeURIComponent(namespace)}`;

  return {
    namespace,
    context,
    server,
    async listDeployments(namespace) {
      const list = await json<{ items: V1Deployment[] }>(
        "GET",
        `/apis/apps/v1${ns(namespace)}/deployments`,
        { verb: "list", resource: "deployments.apps", namespace },
      );
      return list.items;
    },
    getDeployment(namespace, name) {
      return json<V1Deployment>(
        "GET",
        `/apis/apps/v1${ns(namespace)}/deployments/${encodeURIComponent(name)}`,
        { verb: "get", resource: "deployments.apps", namespace, name },
      );
    },
    patchDeployment(namespace, name, patch, resourceVersion) {
      const metadata: Record<string, unknown> = {};
      if (patch.annotations) metadata.annotations = patch.annotations;
      if (resourceVersion !== undefined) metadata.resourceVersion = resourceVersion;
      const data: Record<string, unknown> = { metadata };
      if (patch.replicas !== undefined) data.spec = { replicas: patch.replicas };
      return json<V1Deployment>(
        "PATCH",
        `/apis/apps/v1${ns(namespace)}/deployments/${encodeURIComponent(name)}`,
        { verb: "patch", resource: "deployments.apps", namespace, name },
        { type: "application/merge-patch+json", data },
      );
    },
    async listPods(namespace, labelSelector) {
      const list = await json<{ items: V1Pod[] }>(
        "GET",
        `/api/v1${ns(namespace)}/pods?labelSelector=${encodeURIComponent(labelSelector)}`,
        { verb: "list", resource: "pods", namespace },
      );
      return list.items;
    },
    async listEvents(namespace) {
      const list = await json<{ items: CoreV1Event[] }>(
        "GET",
        `/api/v1${ns(namespace)}/events?fieldSelector=${encodeURIComponent("involvedObject.kind=Deployment")}`,
        { verb: "list", resource: "events", namespace },
      );
      return list.items;
    },
    podMetrics(namespace, pod, port) {
      return send(
        "GET",
        `/api/v1${ns(namespace)}/pods/${encodeURIComponent(pod)}:${port}/proxy/metrics`,
        { verb: "get", resource: "pods/proxy", namespace, name: pod },
        undefined,
        "text/plain",
      );
    },
  };
}
