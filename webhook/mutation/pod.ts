/**
 * The slice of the Pod shape the webhook reads. Objects stay plain JSON: the index signatures
 * keep every field we do not know about, so the mutated pod loses nothing on the way to the diff.
 */
import { err, ok, type Result } from "../../shared/errors.ts";

export type JsonObject = { [key: string]: unknown };

export interface ContainerPort extends JsonObject {
  containerPort: number;
  name?: string;
  protocol?: string;
}

export interface HttpGetAction extends JsonObject {
  port: number | string;
  path?: string;
  host?: string;
  scheme?: string;
  httpHeaders?: { name: string; value: string }[];
}

export interface Probe extends JsonObject {
  httpGet?: HttpGetAction;
  tcpSocket?: { port: number | string; host?: string };
}

export interface Container extends JsonObject {
  name: string;
  image?: string;
  ports?: ContainerPort[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  restartPolicy?: string;
}

export interface PodSpec extends JsonObject {
  containers: Container[];
  initContainers?: Container[];
  volumes?: JsonObject[];
  hostNetwork?: boolean;
}

export interface ObjectMeta extends JsonObject {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  managedFields?: unknown;
}

export interface Pod extends JsonObject {
  metadata?: ObjectMeta;
  spec: PodSpec;
}

export const isObject = (v: unknown): v is JsonObject =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const isStringMap = (v: unknown): v is Record<string, string> =>
  isObject(v) && Object.values(v).every((x) => typeof x === "string");

function checkContainer(raw: unknown, at: string): string | undefined {
  if (!isObject(raw)) return `${at}: must be an object`;
  if (typeof raw.name !== "string" || raw.name === "") return `${at}.name: required string`;
  if (raw.image !== undefined && typeof raw.image !== "string")
    return `${at}.image: must be a string`;
  if (raw.ports !== undefined) {
    if (!Array.isArray(raw.ports)) return `${at}.ports: must be an array`;
    for (const [i, p] of raw.ports.entries()) {
      if (!isObject(p) || typeof p.containerPort !== "number") {
        return `${at}.ports[${i}].containerPort: required number`;
      }
    }
  }
  for (const key of ["livenessProbe", "readinessProbe", "startupProbe"] as const) {
    const probe = raw[key];
    if (probe === undefined) continue;
    if (!isObject(probe)) return `${at}.${key}: must be an object`;
    for (const action of ["httpGet", "tcpSocket"] as const) {
      const a = probe[action];
      if (a === undefined) continue;
      if (!isObject(a) || (typeof a.port !== "number" && typeof a.port !== "string")) {
        return `${at}.${key}.${action}.port: required number or name`;
      }
    }
  }
  return undefined;
}

/** Shape-check the admission request's object: only what the mutation reads is required. */
export function parsePod(raw: unknown): Result<Pod> {
  if (!isObject(raw)) return err("object: must be a JSON object");
  const meta = raw.metadata;
  if (meta !== undefined) {
    if (!isObject(meta)) return err("metadata: must be an object");
    if (meta.labels !== undefined && !isStringMap(meta.labels)) {
      return err("metadata.labels: must map strings to strings");
    }
    if (meta.annotations !== undefined && !isStringMap(meta.annotations)) {
      return err("metadata.annotations: must map strings to strings");
    }
  }
  const spec = raw.spec;
  if (!isObject(spec)) return err("spec: required object");
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) {
    return err("spec.containers: required non-empty array");
  }
  for (const [i, c] of spec.containers.entries()) {
    const problem = checkContainer(c, `spec.containers[${i}]`);
    if (problem) return err(problem);
  }
  if (spec.initContainers !== undefined) {
    if (!Array.isArray(spec.initContainers)) return err("spec.initContainers: must be an array");
    for (const [i, c] of spec.initContainers.entries()) {
      const problem = checkContainer(c, `spec.initContainers[${i}]`);
      if (problem) return err(problem);
    }
  }
  if (
    spec.volumes !== undefined &&
    (!Array.isArray(spec.volumes) || !spec.volumes.every(isObject))
  ) {
    return err("spec.volumes: must be an array of objects");
  }
  // Every field read above has been checked; the rest is carried through untouched.
  return ok(raw as Pod);
}
