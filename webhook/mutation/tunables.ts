/**
 * Per-pod tunables from pod-template annotations, each overriding the webhook's flag default.
 * A bad value is reported (the pod is then not injected, with a warning naming the
 * annotation) rather than silently replaced by a default the user did not ask for.
 */
import { ANNOTATION } from "../../shared/annotations.ts";
import { isLogLevel, type LogLevel } from "../../shared/log.ts";
import { err, ok, type Result } from "../../shared/errors.ts";
import {
  type CaptureMode,
  type InjectConfig,
  type ProxyResources,
  isCaptureMode,
  isQuantity,
} from "./config.ts";
import { parseProtocolList, PROTOCOL_HINT, type PortProtocol } from "./protocols.ts";

export interface Tunables {
  capture: CaptureMode;
  nativeSidecar: boolean;
  logLevel: LogLevel;
  /** verso.dev/access-log, else the webhook's --proxy-access-log. */
  accessLog: boolean;
  resources: ProxyResources;
  /** verso.dev/ports, when set: the app ports in order (first = routed). */
  ports: number[] | undefined;
  excludePorts: ReadonlySet<number>;
  /**
   * verso.dev/protocol: port -> protocol as written (empty when unset). Whether each port is
   * an app port is checked by decide(), which knows the pod's ports.
   */
  protocols: ReadonlyMap<number, PortProtocol>;
}

export function parsePortList(text: string): number[] | undefined {
  const parts = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const ports: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,5}$/.test(p)) return undefined;
    const n = Number(p);
    if (n < 1 || n > 65535) return undefined;
    if (!ports.includes(n)) ports.push(n);
  }
  return ports;
}

function parseBool(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  return t === "true" ? true : t === "false" ? false : undefined;
}

/** Returns the tunables, or the list of `annotation=value` problems. */
export function parseTunables(
  annotations: Record<string, string>,
  config: InjectConfig,
): Result<Tunables, string[]> {
  const problems: string[] = [];
  const bad = (key: string, hint: string): void => {
    problems.push(`${key}=${JSON.stringify(annotations[key])}: ${hint}`);
  };

  let capture = config.capture;
  const captureRaw = annotations[ANNOTATION.capture];
  if (captureRaw !== undefined) {
    if (isCaptureMode(captureRaw.trim())) capture = captureRaw.trim() as CaptureMode;
    else bad(ANNOTATION.capture, 'use "iptables" or "port"');
  }

  let nativeSidecar = config.nativeSidecar;
  const nativeRaw = annotations[ANNOTATION.nativeSidecar];
  if (nativeRaw !== undefined) {
    const b = parseBool(nativeRaw);
    if (b === undefined) bad(ANNOTATION.nativeSidecar, 'use "true" or "false"');
    else nativeSidecar = b;
  }

  let logLevel = config.proxyLogLevel;
  const levelRaw = annotations[ANNOTATION.logLevel];
  if (levelRaw !== undefined) {
    if (isLogLevel(levelRaw.trim())) logLevel = levelRaw.trim() as LogLevel;
    else bad(ANNOTATION.logLevel, "use debug, info, warn or error");
  }

  let accessLog = config.proxyAccessLog;
  const accessLogRaw = annotations[ANNOTATION.accessLog];
  if (accessLogRaw !== undefined) {
    const b = parseBool(accessLogRaw);
    if (b === undefined) bad(ANNOTATION.accessLog, 'use "true" or "false"');
    else accessLog = b;
  }

  const quantity = (key: string, fallback: string): string => {
    const raw = annotations[key];
    if (raw === undefined) return fallback;
    if (isQuantity(raw.trim())) return raw.trim();
    bad(key, 'use a Kubernetes quantity such as "100m" or "64Mi"');
    return fallback;
  };
  const resources: ProxyResources = {
    requests: {
      cpu: quantity(ANNOTATION.proxyCpu, config.resources.requests.cpu),
      memory: quantity(ANNOTATION.proxyMemory, config.resources.requests.memory),
    },
    limits: {
      cpu: quantity(ANNOTATION.proxyCpuLimit, config.resources.limits.cpu),
      memory: quantity(ANNOTATION.proxyMemoryLimit, config.resources.limits.memory),
    },
  };

  let ports: number[] | undefined;
  const portsRaw = annotations[ANNOTATION.ports];
  if (portsRaw !== undefined) {
    ports = parsePortList(portsRaw);
    if (ports === undefined)
      bad(ANNOTATION.ports, 'use comma-separated port numbers, e.g. "8080,9090"');
  }

  let excludePorts: ReadonlySet<number> = new Set();
  const excludeRaw = annotations[ANNOTATION.excludePorts];
  if (excludeRaw !== undefined) {
    const list = parsePortList(excludeRaw);
    if (list === undefined)
      bad(ANNOTATION.excludePorts, 'use comma-separated port numbers, e.g. "9090"');
    else excludePorts = new Set(list);
  }

  let protocols: ReadonlyMap<number, PortProtocol> = new Map();
  const protocolRaw = annotations[ANNOTATION.protocol];
  if (protocolRaw !== undefined) {
    const parsed = parseProtocolList(protocolRaw);
    if (parsed.ok) protocols = parsed.value;
    else bad(ANNOTATION.protocol, `${parsed.error}; ${PROTOCOL_HINT}`);
  }

  if (problems.length > 0) return err(problems);
  return ok({
    capture,
    nativeSidecar,
    logLevel,
    accessLog,
    resources,
    ports,
    excludePorts,
    protocols,
  });
}
