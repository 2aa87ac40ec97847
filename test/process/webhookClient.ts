/** A minimal HTTPS client for the webhook tests and the benchmark (node:https, real TLS). */
import type { ClientRequest, IncomingHttpHeaders } from "node:http";
import { Agent, request } from "node:https";
import { connect } from "node:tls";

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: unknown;
}

export function makeAgent(caPem: string, maxSockets = 64): Agent {
  return new Agent({ ca: caPem, keepAlive: true, maxSockets });
}

export function send(
  agent: Agent,
  url: string,
  method: string,
  body?: string | Buffer,
  headers: Record<string, string> = { "content-type": "application/json" },
): Promise<HttpResult> {
  const { req, result } = open(agent, url, method, headers);
  if (body !== undefined) req.end(body);
  else req.end();
  return result;
}

/**
 * A request kept in flight for as long as the caller wants: the headers go out now with
 * `Expect: 100-continue`, the body only on finish(). `continued` resolves on the server's
 * 100 Continue, i.e. once it has parsed the headers and counts the request as begun.
 */
export function sendHeld(
  agent: Agent,
  url: string,
  method: string,
  body: string,
): { result: Promise<HttpResult>; continued: Promise<void>; finish: () => void } {
  const payload = Buffer.from(body);
  const { req, result } = open(agent, url, method, {
    "content-type": "application/json",
    "content-length": String(payload.length),
    expect: "100-continue",
  });
  const continued = new Promise<void>((resolve) => req.once("continue", () => resolve()));
  req.flushHeaders();
  return { result, continued, finish: () => req.end(payload) };
}

function open(
  agent: Agent,
  url: string,
  method: string,
  headers: Record<string, string>,
): { req: ClientRequest; result: Promise<HttpResult> } {
  const req = request(url, { method, agent, headers });
  const result = new Promise<HttpResult>((resolve, reject) => {
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
      });
    });
    req.on("error", reject);
  });
  req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${url}: timed out`)));
  return { req, result };
}

/** SHA-256 fingerprint of the certificate the server presents right now (new connection). */
export function servedFingerprint(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host, port, rejectUnauthorized: false, servername: "localhost" },
      () => {
        const fp = socket.getPeerCertificate().fingerprint256;
        socket.end();
        resolve(fp);
      },
    );
    socket.on("error", reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error("tls connect timed out")));
  });
}

export function review(
  object: unknown,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "00000000-0000-0000-0000-000000000001",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      requestKind: { group: "", version: "v1", kind: "Pod" },
      requestResource: { group: "", version: "v1", resource: "pods" },
      namespace: "demo",
      operation: "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller" },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
      ...overrides,
    },
  };
}

export function samplePod(name = "shop"): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: `${name}-v1-6b7c9-`,
      labels: { app: name, version: "v1", "pod-template-hash": "6b7c9" },
    },
    spec: {
      containers: [
        {
          name,
          image: `${name}:v1`,
          ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
          readinessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 5 },
        },
      ],
    },
  };
}
