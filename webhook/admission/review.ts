/**
 * admission.k8s.io/v1 AdmissionReview: the type guard for what the apiserver sends, and the
 * response shape. Untrusted JSON is checked field by field; nothing is cast.
 */
import { err, ok, type Result } from "../../shared/errors.ts";
import { isObject } from "../mutation/pod.ts";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  subResource: string | undefined;
  namespace: string | undefined;
  operation: string;
  dryRun: boolean;
  object: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: "JSONPatch";
  patch?: string;
  warnings?: string[];
}

/** Codes for requests answered 4xx (the metric's reason label and the body's `code`). */
export type RejectCode =
  | "body_too_large"
  | "unsupported_media_type"
  | "malformed_json"
  | "too_deep"
  | "request_timeout"
  | "headers_too_large"
  | "bad_api_version"
  | "bad_kind"
  | "missing_request"
  | "missing_uid"
  | "bad_request"
  | "not_found";

export interface Rejection {
  code: RejectCode;
  message: string;
}

const reject = (code: RejectCode, message: string): Result<never, Rejection> =>
  err({ code, message });

export function parseAdmissionReview(raw: unknown): Result<AdmissionRequest, Rejection> {
  if (!isObject(raw)) return reject("bad_request", "body must be a JSON object");
  if (raw.apiVersion !== ADMISSION_API_VERSION) {
    return reject(
      "bad_api_version",
      `apiVersion ${JSON.stringify(raw.apiVersion)} unsupported, use ${ADMISSION_API_VERSION} (admissionReviewVersions: [v1])`,
    );
  }
  if (raw.kind !== "AdmissionReview") {
    return reject("bad_kind", `kind ${JSON.stringify(raw.kind)} unsupported, use AdmissionReview`);
  }
  const req = raw.request;
  if (!isObject(req)) return reject("missing_request", "request: required object");
  if (typeof req.uid !== "string" || req.uid === "") {
    return reject("missing_uid", "request.uid: required non-empty string");
  }
  const k = req.kind;
  if (
    !isObject(k) ||
    typeof k.group !== "string" ||
    typeof k.version !== "string" ||
    typeof k.kind !== "string"
  ) {
    return reject("bad_request", "request.kind: required {group, version, kind}");
  }
  if (typeof req.operation !== "string") {
    return reject("bad_request", "request.operation: required string");
  }
  if (req.namespace !== undefined && typeof req.namespace !== "string") {
    return reject("bad_request", "request.namespace: must be a string");
  }
  if (req.subResource !== undefined && typeof req.subResource !== "string") {
    return reject("bad_request", "request.subResource: must be a string");
  }
  return ok({
    uid: req.uid,
    kind: { group: k.group, version: k.version, kind: k.kind },
    subResource: req.subResource || undefined,
    namespace: req.namespace || undefined,
    operation: req.operation,
    dryRun: req.dryRun === true,
    object: req.object,
  });
}

export const toReview = (response: AdmissionResponse): Record<string, unknown> => ({
  apiVersion: ADMISSION_API_VERSION,
  kind: "AdmissionReview",
  response,
});
