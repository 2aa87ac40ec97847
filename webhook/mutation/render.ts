/**
 * applyPlan: the pod with the proxy injected. Works on a deep clone, so the caller can diff
 * the original against the result; unknown fields are carried through untouched.
 */
import { ANNOTATION, LABEL } from "../../shared/annotations.ts";
import {
  ADMIN_PORT_NAME,
  ENV,
  GRPC_PORT_NAME,
  INIT_CONTAINER,
  PROXY_CONTAINER,
  PROXY_PORT,
  PROXY_PORT_NAME,
  PROXY_RUNTIME_ENV,
  TOKEN_AUDIENCE,
  TOKEN_MOUNT_DIR,
  TOKEN_PATH,
} from "../../shared/pod-env.ts";
import type { InjectConfig } from "./config.ts";
import type { Plan } from "./decide.ts";
import type { Container, HttpGetAction, JsonObject, Pod } from "./pod.ts";

export const TOKEN_VOLUME = "verso-token";
export const INIT_COMMAND = ["/usr/local/bin/verso-init"];
/** The proxy runs as this uid; nothing in the pod needs to know it except the securityContext. */
export const PROXY_UID = 1337;
const TOKEN_TTL_SECONDS = 3600;

const fieldEnv = (name: string, fieldPath: string): JsonObject => ({
  name,
  valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } },
});

const GRPC_LISTEN = `0.0.0.0:${PROXY_PORT.grpc}`;

const adminGet = (path: string): HttpGetAction => ({
  path,
  port: PROXY_PORT.admin,
  scheme: "HTTP",
});

function proxyEnv(plan: Plan, config: InjectConfig): JsonObject[] {
  const env: JsonObject[] = [
    { name: ENV.listen, value: `0.0.0.0:${PROXY_PORT.inbound}` },
    { name: ENV.app, value: `127.0.0.1:${plan.routedPort}` },
    { name: ENV.admin, value: `0.0.0.0:${PROXY_PORT.admin}` },
    { name: ENV.appName, value: plan.identity.app },
    { name: ENV.version, value: plan.identity.version },
    fieldEnv(ENV.namespace, "metadata.namespace"),
    fieldEnv(ENV.podName, "metadata.name"),
    fieldEnv(ENV.podIp, "status.podIP"),
    { name: ENV.controllerUrl, value: config.controllerUrl },
    ...(config.controllerCaPem
      ? [{ name: ENV.controllerCaPem, value: config.controllerCaPem }]
      : []),
    { name: ENV.tokenFile, value: TOKEN_PATH },
    { name: ENV.capture, value: plan.capture },
    { name: ENV.logLevel, value: plan.logLevel },
  ];
  // Only pods with a gRPC port get the gRPC listener: every other pod stays as it was.
  const grpcPort = plan.grpcPorts[0];
  if (grpcPort !== undefined) {
    env.push({ name: ENV.grpcListen, value: GRPC_LISTEN });
    env.push({ name: ENV.grpcApp, value: `127.0.0.1:${grpcPort}` });
  }
  if (plan.capturePorts.length > 0) {
    env.push({ name: ENV.capturePorts, value: plan.capturePorts.join(",") });
  }
  if (plan.captureGrpcPorts.length > 0) {
    env.push({ name: ENV.captureGrpcPorts, value: plan.captureGrpcPorts.join(",") });
  }
  if (Object.keys(plan.probes).length > 0) {
    env.push({ name: ENV.probes, value: JSON.stringify(plan.probes) });
  }
  // Only the access log reads the colour; pods without the log keep the env they always had.
  if (plan.accessLog) {
    env.push({ name: ENV.accessLog, value: "true" });
    if (plan.identity.color !== undefined) {
      env.push({ name: ENV.color, value: plan.identity.color });
    }
  }
  for (const [name, value] of Object.entries(PROXY_RUNTIME_ENV)) env.push({ name, value });
  return env;
}

export function proxyContainer(plan: Plan, config: InjectConfig): Container {
  const c: Container = {
    name: PROXY_CONTAINER,
    image: config.proxyImage,
    env: proxyEnv(plan, config),
    ports: [
      { name: PROXY_PORT_NAME, containerPort: PROXY_PORT.inbound, protocol: "TCP" },
      // Named so a Service can target it in `port` capture, and the controller can find it.
      ...(plan.grpcPorts.length > 0
        ? [{ name: GRPC_PORT_NAME, containerPort: PROXY_PORT.grpc, protocol: "TCP" }]
        : []),
      { name: ADMIN_PORT_NAME, containerPort: PROXY_PORT.admin, protocol: "TCP" },
    ],
    resources: {
      requests: { ...plan.resources.requests },
      limits: { ...plan.resources.limits },
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: PROXY_UID,
      runAsGroup: PROXY_UID,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    // As a native sidecar the startup probe is what holds back the app containers.
    startupProbe: { httpGet: adminGet("/healthz"), periodSeconds: 1, failureThreshold: 60 },
    livenessProbe: { httpGet: adminGet("/healthz"), periodSeconds: 10, failureThreshold: 3 },
    readinessProbe: { httpGet: adminGet("/ready"), periodSeconds: 2, failureThreshold: 3 },
    volumeMounts: [{ name: TOKEN_VOLUME, mountPath: TOKEN_MOUNT_DIR, readOnly: true }],
  };
  if (plan.nativeSidecar) c.restartPolicy = "Always";
  return c;
}

export function initContainer(plan: Plan, config: InjectConfig): Container {
  return {
    name: INIT_CONTAINER,
    image: config.proxyImage,
    command: [...INIT_COMMAND],
    env: [
      { name: ENV.capturePorts, value: plan.capturePorts.join(",") },
      { name: ENV.listen, value: `0.0.0.0:${PROXY_PORT.inbound}` },
      ...(plan.captureGrpcPorts.length > 0
        ? [
            { name: ENV.captureGrpcPorts, value: plan.captureGrpcPorts.join(",") },
            { name: ENV.grpcListen, value: GRPC_LISTEN },
          ]
        : []),
    ],
    resources: {
      requests: { cpu: "10m", memory: "16Mi" },
      limits: { cpu: "100m", memory: "32Mi" },
    },
    securityContext: {
      // iptables needs root with NET_ADMIN/NET_RAW in the pod's network namespace, nothing more.
      // The root filesystem stays writable because iptables-legacy takes /run/xtables.lock.
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: false,
      capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
}

const tokenVolume = (): JsonObject => ({
  name: TOKEN_VOLUME,
  projected: {
    sources: [
      {
        serviceAccountToken: {
          audience: TOKEN_AUDIENCE,
          expirationSeconds: TOKEN_TTL_SECONDS,
          path: "token",
        },
      },
    ],
  },
});

export function applyPlan(original: Pod, plan: Plan, config: InjectConfig): Pod {
  const pod = structuredClone(original);
  const meta = (pod.metadata ??= {});
  const labels = (meta.labels ??= {});
  labels[LABEL.app] = plan.identity.app;
  labels[LABEL.version] = plan.identity.version;
  if (plan.identity.color !== undefined) labels[LABEL.color] = plan.identity.color;

  const annotations = (meta.annotations ??= {});
  annotations[ANNOTATION.injected] = "true";
  if (!Object.keys(annotations).some((k) => k.startsWith("prometheus.io/"))) {
    annotations["prometheus.io/scrape"] = "true";
    annotations["prometheus.io/port"] = String(PROXY_PORT.admin);
    annotations["prometheus.io/path"] = "/metrics";
  }

  const spec = pod.spec;
  for (const r of plan.probeRewrites) {
    const c = spec.containers.find((x) => x.name === r.container);
    if (c) c[r.field] = structuredClone(r.probe);
  }

  const proxy = proxyContainer(plan, config);
  const before: Container[] = plan.capture === "iptables" ? [initContainer(plan, config)] : [];
  if (plan.nativeSidecar) before.push(proxy);
  else spec.containers.push(proxy);
  if (before.length > 0) spec.initContainers = [...before, ...(spec.initContainers ?? [])];

  spec.volumes = [...(spec.volumes ?? []), tokenVolume()];
  return pod;
}
