/**
 * Reason codes: one string is at once the log field, the metric label and the key of the
 * warning text. The set is fixed so metric label cardinality stays bounded.
 */
export const SKIP_REASONS = [
  "not_pod",
  "not_create",
  "malformed_pod",
  "protected_namespace",
  "opted_out",
  "host_network",
  "other_mesh",
  "already_injected",
  "invalid_annotation",
  "no_app_identity",
  "no_ports",
  "port_conflict",
] as const;

export type ReasonCode = (typeof SKIP_REASONS)[number];

export const REASON_TEXT: Record<ReasonCode, string> = {
  not_pod: "the object is not a Pod",
  not_create: "only CREATE is mutated",
  malformed_pod: "the pod could not be read",
  protected_namespace: "pods in kube-system and Verso's own namespace are never injected",
  opted_out: 'the pod has verso.dev/inject: "false"',
  host_network: "hostNetwork pods share the node's network and cannot be captured",
  other_mesh: "another mesh's proxy (istio, linkerd) is already in the pod",
  already_injected: "the Verso proxy is already in the pod",
  invalid_annotation: "a verso.dev/ annotation on the pod has an invalid value",
  no_app_identity: "no app name: set verso.dev/app, or the label app.kubernetes.io/name or app",
  no_ports: "no TCP port to route: declare a containerPort or set verso.dev/ports",
  port_conflict:
    "an app port collides with the proxy's ports 15006/15020 (and 15007 when the pod has a gRPC port)",
};

/** Skips that deserve a warning to the user (the others are deliberate choices). */
export const WARN_ON_SKIP: ReadonlySet<ReasonCode> = new Set<ReasonCode>([
  "malformed_pod",
  "other_mesh",
  "invalid_annotation",
  "no_app_identity",
  "no_ports",
  "port_conflict",
]);
