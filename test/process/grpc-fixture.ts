/**
 * Real gRPC pods for the sidecar's gRPC suites: a `@grpc/grpc-js` server per version (in the
 * test process) and clients. Messages are raw bytes (no protobuf needed to prove a proxy):
 *   /verso.test.Echo/Unary   answers `<version>:<request>`; a request `status:N` fails with N,
 *                            `sleep:MS` answers after MS (and records a cancellation);
 *                            every call fails with `failWith` while a test sets it
 *   /verso.test.Echo/Down    server streaming: the request is a byte count, sent in 64 KiB messages
 *   /verso.test.Echo/Up      client streaming: answers the byte count it received
 *   /verso.test.Echo/Bidi    echoes every message as it arrives
 *   /grpc.health.v1.Health/Check   SERVING (the protobuf bytes 08 01)
 * Trailing metadata `x-served-by: <version>` on every OK call.
 */
import grpc from "@grpc/grpc-js";

const raw = (b: Buffer): Buffer => b;
const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: raw,
  requestDeserialize: raw,
  responseSerialize: raw,
  responseDeserialize: raw,
});

export const ECHO = {
  Unary: method("/verso.test.Echo/Unary", false, false),
  Down: method("/verso.test.Echo/Down", false, true),
  Up: method("/verso.test.Echo/Up", true, false),
  Bidi: method("/verso.test.Echo/Bidi", true, true),
};
const HEALTH = { Check: method("/grpc.health.v1.Health/Check", false, false) };

export interface GrpcApp {
  readonly host: string;
  readonly port: number;
  readonly version: string;
  /** Calls the app saw cancelled (by a client reset or a deadline). */
  cancelled: number;
  calls: number;
  /** Set: every Unary call fails with this status (a release gone bad); unset: it answers. */
  failWith?: number;
  close(): Promise<void>;
}

function served(version: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("x-served-by", version);
  return md;
}

/** `maxConnectionAgeMs`: the server sends GOAWAY to connections older than this (grpc-js). */
export async function startGrpcApp(
  host: string,
  version: string,
  opts: { maxConnectionAgeMs?: number } = {},
): Promise<GrpcApp> {
  const server = new grpc.Server(
    opts.maxConnectionAgeMs === undefined
      ? {}
      : {
          "grpc.max_connection_age_ms": opts.maxConnectionAgeMs,
          "grpc.max_connection_age_grace_ms": 5_000,
        },
  );
  const app: GrpcApp = {
    host,
    port: 0,
    version,
    cancelled: 0,
    calls: 0,
    close: () => new Promise((r) => server.tryShutdown(() => r())),
  };
  server.addService(ECHO, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      app.calls++;
      if (app.failWith !== undefined)
        return cb({ code: app.failWith, details: `${version} is failing (failWith)` });
      const text = call.request.toString();
      const status = /^status:(\d+)$/.exec(text);
      if (status) return cb({ code: Number(status[1]), details: `${version} failed on purpose` });
      const sleep = /^sleep:(\d+)$/.exec(text);
      if (sleep) {
        const timer = setTimeout(() => cb(null, Buffer.from(`${version}:slept`)), Number(sleep[1]));
        call.on("cancelled", () => {
          clearTimeout(timer);
          app.cancelled++;
        });
        return;
      }
      cb(null, Buffer.from(`${version}:${text}`), served(version));
    },
    Down: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      let left = Number(call.request.toString());
      const chunk = Buffer.alloc(64 * 1024, 7);
      const push = (): void => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!call.write(chunk.subarray(0, n))) return void call.once("drain", push);
        }
        call.end(served(version));
      };
      push();
    },
    Up: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      let n = 0;
      call.on("data", (d: Buffer) => (n += d.length));
      call.on("end", () => cb(null, Buffer.from(`${version}:${n}`), served(version)));
    },
    Bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on("data", (d: Buffer) => call.write(d));
      call.on("end", () => call.end(served(version)));
    },
  });
  server.addService(HEALTH, {
    Check: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from([8, 1])),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return Object.assign(app, { port });
}

/** One client = one HTTP/2 connection (grpc-js keeps a single subchannel to one address). */
export function client(host: string, port: number): grpc.Client {
  return new grpc.Client(`${host}:${port}`, grpc.credentials.createInsecure());
}

export interface UnaryResult {
  code: number;
  body: string | undefined;
  details: string | undefined;
  /** `x-verso-version` from the response headers (the version whose proxy served it). */
  version: string | undefined;
}

export function unary(
  c: grpc.Client,
  request: string,
  metadata: Record<string, string> = {},
  options: grpc.CallOptions = {},
): Promise<UnaryResult> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    let version: string | undefined;
    const call = c.makeUnaryRequest(
      ECHO.Unary.path,
      raw,
      raw,
      Buffer.from(request),
      md,
      options,
      (error, value) =>
        resolve({
          code: error?.code ?? 0,
          body: value?.toString(),
          details: error?.details,
          version,
        }),
    );
    call.on("metadata", (m) => (version = m.get("x-verso-version")[0] as string | undefined));
  });
}
