/**
 * Least privilege, checked three ways (unit tier: files only, no cluster):
 *
 *   the code's client calls  ==  API_CALLS (webhook/controller/io/apiCalls.ts)  ==  deploy/
 *
 * 1. The code is scanned for every call it can make: each method called on a client-node API
 *    object (`kc.makeApiClient(CoreV1Api)` -> `core.listNamespacedPod(...)` is list pods) and
 *    each watch path (`path: "/api/v1/pods"` is watch pods). The scan is what keeps the table
 *    honest: a table alone says what its author remembered, and a call added without an
 *    entry would go unnoticed until a cluster refused it. The table is kept because the scan
 *    cannot say why a call is made, nor which ones are meant to go ungranted.
 * 2. The RBAC objects the install applies (deploy/kustomization.yaml's resources) and that
 *    are bound to the Deployment's ServiceAccount must grant exactly the table's calls: the
 *    ClusterRole its "cluster" entries, the Role in Verso's namespace its "own-namespace"
 *    entries (resourceNames included), nothing more, nothing for a "none" entry.
 * 3. docs/security.md lists every entry.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { VersoError } from "../../shared/errors.ts";
import {
  API_CALLS,
  KUBE_API_CALLS,
  withGrants,
  type ApiCall,
  type ApiCallName,
} from "../../webhook/controller/io/apiCalls.ts";
import type { KubeApi } from "../../webhook/controller/io/kube.ts";
import { REPO_ROOT } from "../harness/paths.ts";

/** group/resource verb [names], the unit everything here is compared in. */
const key = (group: string, resource: string, verb: string, names?: readonly string[]): string =>
  `${group || "core"}/${resource} ${verb}${names && names.length > 0 ? ` [${[...names].sort().join(",")}]` : ""}`;
const keyOf = (c: ApiCall): string => key(c.group, c.resource, c.verb, c.names);
const sorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();
const entries = Object.values(API_CALLS) as ApiCall[];

// ---- 1. the code ---------------------------------------------------------------------------

/** client-node API classes -> their group. VersionApi reads /version, a non-resource URL. */
const API_GROUPS: Record<string, string | "non-resource"> = {
  CoreV1Api: "",
  AppsV1Api: "apps",
  AuthenticationV1Api: "authentication.k8s.io",
  CoordinationV1Api: "coordination.k8s.io",
  EventsV1Api: "events.k8s.io",
  VersionApi: "non-resource",
};
/** Kinds in client-node method names -> resources (a new kind must be added here on purpose). */
const RESOURCES: Record<string, string> = {
  Deployment: "deployments",
  Pod: "pods",
  Namespace: "namespaces",
  Event: "events",
  TokenReview: "tokenreviews",
  Lease: "leases",
  Secret: "secrets",
  ConfigMap: "configmaps",
};
const VERBS: Record<string, string> = {
  read: "get",
  list: "list",
  create: "create",
  replace: "update",
  patch: "patch",
  delete: "delete",
  deleteCollection: "deletecollection",
};

/** `patchNamespacedDeployment` -> patch deployments; subresources (`...Status`) are refused. */
function parseMethod(method: string): { verb: string; resource: string } {
  const m =
    /^(read|list|create|replace|patch|deleteCollection|delete)(Namespaced)?([A-Z]\w*?)(ForAllNamespaces)?$/.exec(
      method,
    );
  const resource = m ? RESOURCES[m[3]!] : undefined;
  if (!m || !resource) {
    throw new Error(`client call ${method}: unknown verb or kind; add it to rbac.test.ts's tables`);
  }
  return { verb: VERBS[m[1]!]!, resource };
}

/** An apiserver path -> group and resource (`/apis/apps/v1/namespaces/x/deployments`). */
function parsePath(path: string): { group: string; resource: string } {
  const parts = path.split("/").filter(Boolean);
  const [group, rest] = parts[0] === "api" ? ["", parts.slice(2)] : [parts[1]!, parts.slice(3)];
  const resource = rest[0] === "namespaces" && rest.length >= 3 ? rest[2]! : rest[0]!;
  return { group, resource };
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [path] : [];
  });
}

interface Found {
  key: string;
  where: string;
}

/** Every API call in webhook/ (the process the ServiceAccount runs). */
function scanCalls(): { found: Found[]; nonResource: string[] } {
  const found: Found[] = [];
  const nonResource: string[] = [];
  for (const file of sourceFiles(join(REPO_ROOT, "webhook"))) {
    const text = readFileSync(file, "utf8");
    const where = relative(REPO_ROOT, file);
    const clients = new Map<string, string>();
    for (const m of text.matchAll(/(\w+)\s*=\s*\w+\.makeApiClient\((\w+)\)/g)) {
      clients.set(m[1]!, m[2]!);
    }
    const calls: [string, string][] = [
      ...[...text.matchAll(/\b(\w+)\.(\w+)\(/g)]
        .filter((m) => clients.has(m[1]!))
        .map((m): [string, string] => [clients.get(m[1]!)!, m[2]!]),
      ...[...text.matchAll(/makeApiClient\((\w+)\)\.(\w+)\(/g)].map((m): [string, string] => [
        m[1]!,
        m[2]!,
      ]),
    ];
    for (const [api, method] of calls) {
      const group = API_GROUPS[api];
      if (group === undefined) throw new Error(`${where}: ${api}: add its group to rbac.test.ts`);
      if (group === "non-resource") {
        nonResource.push(`${api}.${method}`);
        continue;
      }
      const { verb, resource } = parseMethod(method);
      found.push({ key: key(group, resource, verb), where: `${where}: ${api}.${method}` });
    }
    // Informers: `path: "/api/v1/pods"` or `path: (ns) => \`/api/v1/namespaces/${ns}/pods\``.
    for (const m of text.matchAll(/\bpath:\s*(?:\([^)]*\)\s*=>\s*)?["`](\/apis?\/[^"`]+)["`]/g)) {
      const { group, resource } = parsePath(m[1]!);
      found.push({ key: key(group, resource, "watch"), where: `${where}: watch ${m[1]}` });
    }
  }
  return { found, nonResource };
}

// ---- 2. deploy/ ----------------------------------------------------------------------------

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: {
    apiGroups?: string[];
    resources?: string[];
    verbs?: string[];
    resourceNames?: string[];
  }[];
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
  spec?: { template?: { spec?: { serviceAccountName?: string } } };
}

function installed(): K8sObject[] {
  const dir = join(REPO_ROOT, "deploy");
  const kustomization = parseAllDocuments(
    readFileSync(join(dir, "kustomization.yaml"), "utf8"),
  )[0]!.toJS() as {
    resources: string[];
  };
  return kustomization.resources.flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), "utf8"))
      .map((d) => d.toJS() as K8sObject | null)
      .filter((o): o is K8sObject => o !== null),
  );
}

const flatten = (rules: K8sObject["rules"] = []): string[] =>
  rules.flatMap((r) =>
    (r.apiGroups ?? []).flatMap((g) =>
      (r.resources ?? []).flatMap((res) =>
        (r.verbs ?? []).map((v) => key(g, res, v, r.resourceNames)),
      ),
    ),
  );

/** What the install grants the webhook Deployment's ServiceAccount, by where. */
function grants(): { cluster: string[]; ownNamespace: string[]; ns: string; unbound: string[] } {
  const objects = installed();
  const deployment = objects.find(
    (o) => o.kind === "Deployment" && o.metadata.name === "verso-webhook",
  );
  const sa = deployment?.spec?.template?.spec?.serviceAccountName;
  const ns = deployment?.metadata.namespace;
  if (!sa || !ns) throw new Error("deploy/deployment.yaml: no serviceAccountName or namespace");
  const mine = (b: K8sObject): boolean =>
    (b.subjects ?? []).some(
      (s) => s.kind === "ServiceAccount" && s.name === sa && s.namespace === ns,
    );
  const role = (kind: string, name: string, namespace?: string): K8sObject => {
    const r = objects.find(
      (o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === namespace,
    );
    if (!r) throw new Error(`${kind} ${namespace ?? ""}/${name} is bound but not in deploy/`);
    return r;
  };
  const cluster: string[] = [];
  const ownNamespace: string[] = [];
  for (const b of objects.filter((o) => o.kind === "ClusterRoleBinding" && mine(o))) {
    cluster.push(...flatten(role("ClusterRole", b.roleRef!.name).rules));
  }
  for (const b of objects.filter((o) => o.kind === "RoleBinding" && mine(o))) {
    // A RoleBinding may grant a ClusterRole's rules, in the binding's namespace only.
    const namespace = b.metadata.namespace;
    const r =
      b.roleRef!.kind === "ClusterRole"
        ? role("ClusterRole", b.roleRef!.name)
        : role("Role", b.roleRef!.name, namespace);
    (namespace === ns ? ownNamespace : cluster).push(...flatten(r.rules));
  }
  const bound = new Set(
    objects
      .filter((o) => /RoleBinding$/.test(o.kind))
      .map((b) => `${b.roleRef!.kind}/${b.roleRef!.name}`),
  );
  const unbound = objects
    .filter(
      (o) =>
        (o.kind === "Role" || o.kind === "ClusterRole") &&
        !bound.has(`${o.kind}/${o.metadata.name}`),
    )
    .map((o) => `${o.kind}/${o.metadata.name}`);
  return { cluster, ownNamespace, ns, unbound };
}

// ---- the tests -------------------------------------------------------------------------------

describe("RBAC: the calls the code makes == API_CALLS == what deploy/ grants", () => {
  it("every client call and watch in webhook/ is in API_CALLS, and every entry is still made", () => {
    const { found, nonResource } = scanCalls();
    const table = sorted(entries.map((c) => key(c.group, c.resource, c.verb)));
    const inCode = sorted(found.map((f) => f.key));
    const missing = found
      .filter((f) => !table.includes(f.key))
      .map((f) => `${f.key}  (${f.where})`);
    expect(missing, "calls in the code without an API_CALLS entry").toEqual([]);
    expect(
      table.filter((k) => !inCode.includes(k)),
      "API_CALLS entries no code makes",
    ).toEqual([]);
    // /version (the controller's start-up probe) is open to every client by Kubernetes' own
    // system:public-info-viewer ClusterRole: nothing to grant.
    expect(sorted(nonResource)).toEqual(["VersionApi.getCode"]);
    console.info(
      `API calls found in webhook/:\n  ${sorted(found.map((f) => `${f.key}  <- ${f.where}`)).join("\n  ")}`,
    );
  });

  it("the ClusterRole grants exactly the cluster-wide calls, the Role exactly those in Verso's namespace", () => {
    const g = grants();
    const want = (grant: ApiCall["grant"]): string[] =>
      sorted(entries.filter((c) => c.grant === grant).map(keyOf));
    expect(sorted(g.cluster)).toEqual(want("cluster"));
    expect(sorted(g.ownNamespace)).toEqual(want("own-namespace"));
    // An ungranted call stays ungranted, in either place.
    const none = entries
      .filter((c) => c.grant === "none")
      .map((c) => key(c.group, c.resource, c.verb));
    expect([...g.cluster, ...g.ownNamespace].filter((k) => none.includes(k))).toEqual([]);
    expect(g.unbound, "Roles in deploy/ bound to nobody").toEqual([]);
    expect(g.ns).toBe("verso-system");
  });

  it("no wildcard, no escalation: no *, no secrets beyond the hop key's namespace, no bind/escalate/impersonate", () => {
    const g = grants();
    const all = [...g.cluster, ...g.ownNamespace];
    expect(all.filter((k) => k.includes("*"))).toEqual([]);
    expect(
      all.filter((k) => / (bind|escalate|impersonate|deletecollection|delete)\b/.test(k)),
    ).toEqual([]);
    expect(g.cluster.filter((k) => k.startsWith("core/secrets"))).toEqual([]);
  });

  it("every KubeApi method names calls in the table (the compiler checks the method list)", () => {
    for (const calls of Object.values(KUBE_API_CALLS)) {
      for (const c of calls) expect(Object.keys(API_CALLS)).toContain(c);
    }
  });

  it("docs/security.md's RBAC section lists every call, and nothing else", () => {
    const doc = readFileSync(join(REPO_ROOT, "docs", "security.md"), "utf8");
    // Table rows whose first cell is a verb in backquotes: [verb, resource] as written.
    const section = doc.slice(doc.indexOf("## RBAC"), doc.indexOf("\n## ", doc.indexOf("## RBAC")));
    const rows = section
      .split("\n")
      .filter((l) => l.startsWith("| `"))
      .map((l) =>
        l
          .split("|")
          .slice(1, 3)
          .map((cell) => cell.trim()),
      );
    for (const [name, c] of Object.entries(API_CALLS) as [ApiCallName, ApiCall][]) {
      const target = c.group === "" ? c.resource : `${c.resource}.${c.group}`;
      const row = rows.find(
        ([verb, resource]) => verb === `\`${c.verb}\`` && resource === `\`${target}\``,
      );
      expect(row, `docs/security.md: no row for ${name}`).toBeDefined();
    }
    expect(rows.length).toBe(entries.length);
  });
});

describe("withGrants: a refusal says which grant is missing", () => {
  const forbidden = Object.assign(new Error("HTTP-Code: 403"), { code: 403 });
  const fake = (error: unknown): KubeApi =>
    Object.fromEntries(
      Object.keys(KUBE_API_CALLS).map((m) => [m, () => Promise.reject(error)]),
    ) as unknown as KubeApi;

  it("403 -> VersoError CONTROLLER_FORBIDDEN naming the method's grants", async () => {
    const api = withGrants(fake(forbidden));
    const e = await api
      .writeLease("verso-system", "verso-controller", {
        holder: "a",
        renewTime: 0,
        durationSeconds: 15,
        transitions: 0,
        resourceVersion: undefined,
      })
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VersoError);
    expect(e).toMatchObject({ code: "CONTROLLER_FORBIDDEN", cause: forbidden });
    expect((e as Error).message).toContain(
      "create leases.coordination.k8s.io and update leases.coordination.k8s.io",
    );
    const secret = await withGrants(fake(forbidden))
      .readSecretKey("ns", "verso-hop-key", "key")
      .catch((x: unknown) => x);
    expect((secret as Error).message).toContain("get secrets (verso-hop-key)");
  });

  it("any other failure, and every answer, passes through unchanged", async () => {
    const conflict = Object.assign(new Error("409"), { code: 409 });
    await expect(withGrants(fake(conflict)).createSecret("ns", "n", {})).rejects.toBe(conflict);
    const ok = { ...fake(forbidden), review: async () => ({ authenticated: true }) } as KubeApi;
    await expect(withGrants(ok).review("t", ["verso"])).resolves.toEqual({ authenticated: true });
  });
});
