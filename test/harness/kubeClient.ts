/**
 * A small Kubernetes REST client for the harness (node:https, bearer token, pinned CA).
 * Enough for the stand-in kubelet and the test suites: get/list/create/patch/delete and
 * watch as a stream of events. Errors carry the HTTP status and the Status reason.
 */
import { Agent, request as httpsRequest } from "node:https";
import type { IncomingMessage } from "node:http";
import { createInterface } from "node:readline";

export interface Credentials {
  server: string;
  token: string;
  caPem: string;
}

export class KubeError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = "KubeError";
    this.status = status;
    this.reason = reason;
  }
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export type PatchType = "merge" | "strategic" | "json" | "apply";
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

export interface RequestOptions {
  method?: string;
  body?: unknown;
  contentType?: string;
  query?: Record<string, string>;
}

export class KubeClient {
  readonly credentials: Credentials;
  readonly #agent: Agent;

  constructor(credentials: Credentials) {
    this.credentials = credentials;
    this.#agent = new Agent({ ca: credentials.caPem, keepAlive: true, maxSockets: 32 });
  }

  async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.#send(path, options);
    const text = await readAll(res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw toError(status, text);
    return (text.length > 0 ? JSON.parse(text) : {}) as T;
  }

  /** A non-JSON endpoint such as /metrics. */
  async text(path: string): Promise<string> {
    const res = await this.#send(path, {});
    const text = await readAll(res);
    if ((res.statusCode ?? 0) >= 300) throw toError(res.statusCode ?? 0, text);
    return text;
  }

  get<T>(path: string, query?: Record<string, string>): Promise<T> {
    return this.request<T>(path, { query });
  }

  create<T>(path: string, body: unknown, query?: Record<string, string>): Promise<T> {
    return this.request<T>(path, { method: "POST", body, query });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>(path, { method: "PUT", body });
  }

  patch<T>(path: string, body: unknown, type: PatchType = "merge"): Promise<T> {
    return this.request<T>(path, {
      method: "PATCH",
      body,
      contentType: PATCH_CONTENT_TYPE[type],
    });
  }

  delete<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>(path, { method: "DELETE", body });
  }

  /** Returns undefined on 404 instead of throwing. */
  async getOptional<T>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (error) {
      if (error instanceof KubeError && error.status === 404) return undefined;
      throw error;
    }
  }

  /**
   * Watches `path` (a collection) from `resourceVersion`; calls `onEvent` per event until the
   * server closes the stream or `signal` aborts. Resolves when the stream ends.
   */
  async watch<T>(
    path: string,
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await this.#send(path, {
      query: { watch: "1", resourceVersion, allowWatchBookmarks: "true" },
      signal,
    });
    if ((res.statusCode ?? 0) !== 200) throw toError(res.statusCode ?? 0, await readAll(res));
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    const onAbort = (): void => {
      lines.close();
      res.destroy();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const line of lines) {
        if (line.trim().length === 0) continue;
        onEvent(JSON.parse(line) as WatchEvent<T>);
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  close(): void {
    this.#agent.destroy();
  }

  #send(
    path: string,
    options: RequestOptions & { signal?: AbortSignal },
  ): Promise<IncomingMessage> {
    const url = new URL(path, this.credentials.server);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    const payload =
      options.body === undefined
        ? undefined
        : typeof options.body === "string"
          ? options.body
          : JSON.stringify(options.body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method: options.method ?? "GET",
          agent: this.#agent,
          signal: options.signal,
          headers: {
            authorization: `Bearer ${this.credentials.token}`,
            accept: "application/json",
            ...(payload === undefined
              ? {}
              : {
                  "content-type": options.contentType ?? "application/json",
                  "content-length": Buffer.byteLength(payload),
                }),
          },
        },
        resolve,
      );
      req.once("error", reject);
      req.end(payload);
    });
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function toError(status: number, text: string): KubeError {
  try {
    const parsed = JSON.parse(text) as { reason?: string; message?: string };
    return new KubeError(status, parsed.reason ?? "", parsed.message ?? text);
  } catch {
    return new KubeError(status, "", text.slice(0, 500));
  }
}
