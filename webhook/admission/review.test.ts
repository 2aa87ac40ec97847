import { describe, expect, it } from "vitest";
import { parseAdmissionReview, type RejectCode } from "./review.ts";

const good = () => ({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: {
    uid: "u1",
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    namespace: "demo",
    operation: "CREATE",
    dryRun: true,
    object: { spec: {} },
  },
});

describe("parseAdmissionReview", () => {
  it("accepts a v1 review", () => {
    const r = parseAdmissionReview(good());
    expect(r).toMatchObject({
      ok: true,
      value: { uid: "u1", namespace: "demo", operation: "CREATE", dryRun: true },
    });
  });

  const bad: [string, unknown, RejectCode][] = [
    ["an array", [], "bad_request"],
    ["null", null, "bad_request"],
    ["v1beta1", { ...good(), apiVersion: "admission.k8s.io/v1beta1" }, "bad_api_version"],
    ["wrong kind", { ...good(), kind: "Pod" }, "bad_kind"],
    ["no request", { ...good(), request: undefined }, "missing_request"],
    ["empty uid", { ...good(), request: { ...good().request, uid: "" } }, "missing_uid"],
    ["numeric uid", { ...good(), request: { ...good().request, uid: 7 } }, "missing_uid"],
    ["no kind", { ...good(), request: { ...good().request, kind: "Pod" } }, "bad_request"],
    ["no operation", { ...good(), request: { ...good().request, operation: 1 } }, "bad_request"],
  ];
  it.each(bad)("rejects %s", (_name, raw, code) => {
    const r = parseAdmissionReview(raw);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.code).toBe(code);
  });
});
