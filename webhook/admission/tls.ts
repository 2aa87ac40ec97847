/**
 * Serving certificate: loaded once at start, re-read when the files change (cert-manager
 * rotates them by swapping a symlink in the mounted Secret directory, so the directory is
 * watched, not the file), and swapped into the running server with setSecureContext.
 * A half-written or mismatched pair is rejected and the previous context stays in force.
 */
import { watch, type FSWatcher } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { createSecureContext } from "node:tls";
import { generate } from "selfsigned";
import { VersoError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { TlsFiles } from "../config.ts";

export interface TlsPair {
  cert: string;
  key: string;
}

export async function readPair(files: TlsFiles): Promise<TlsPair> {
  let cert: string;
  let key: string;
  try {
    [cert, key] = await Promise.all([
      readFile(files.certFile, "utf8"),
      readFile(files.keyFile, "utf8"),
    ]);
  } catch (cause) {
    throw new VersoError("WEBHOOK_TLS_READ", `cannot read ${files.certFile} / ${files.keyFile}`, {
      cause,
    });
  }
  try {
    createSecureContext({ cert, key });
  } catch (cause) {
    throw new VersoError(
      "WEBHOOK_TLS_INVALID",
      `${files.certFile} and ${files.keyFile} are not a valid pair`,
      { cause },
    );
  }
  return { cert, key };
}

/** A self-signed pair for local use (never in a cluster: there cert-manager provides one). */
export async function writeSelfSigned(dir: string, hosts: readonly string[]): Promise<TlsFiles> {
  const dns = [
    ...new Set([
      "localhost",
      "verso-webhook.verso-system.svc",
      ...hosts.filter((h) => !/^[\d.:]+$/.test(h)),
    ]),
  ];
  const ips = [
    ...new Set([
      "127.0.0.1",
      "::1",
      ...hosts.filter((h) => /^[\d.:]+$/.test(h) && h !== "0.0.0.0"),
    ]),
  ];
  const notAfter = new Date(Date.now() + 365 * 24 * 3600 * 1000);
  const pems = await generate([{ name: "commonName", value: "verso-webhook" }], {
    keyType: "ec",
    algorithm: "sha256",
    notAfterDate: notAfter,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          ...dns.map((value) => ({ type: 2 as const, value })),
          ...ips.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
  });
  const abs = resolve(dir);
  await mkdir(abs, { recursive: true, mode: 0o700 });
  const files = { certFile: join(abs, "cert.pem"), keyFile: join(abs, "key.pem") };
  await writeFile(files.certFile, pems.cert, { mode: 0o644 });
  await writeFile(files.keyFile, pems.private, { mode: 0o600 });
  return files;
}

export interface TlsReloader {
  /** Re-read now; true when a new pair was installed. */
  reload(): Promise<boolean>;
  stop(): void;
}

export function watchPair(
  files: TlsFiles,
  current: TlsPair,
  install: (pair: TlsPair) => void,
  opts: { pollMs: number; logger: Logger },
): TlsReloader {
  let last = current;
  let running: Promise<boolean> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;

  const check = async (): Promise<boolean> => {
    let pair: TlsPair;
    try {
      pair = await readPair(files);
    } catch (e) {
      // Mid-rotation the two files can disagree for a moment; the next event or poll retries.
      opts.logger.warn("tls reload failed, keeping the current certificate", { err: e });
      return false;
    }
    if (pair.cert === last.cert && pair.key === last.key) return false;
    install(pair);
    last = pair;
    opts.logger.info("tls certificate reloaded", { certFile: files.certFile });
    return true;
  };

  const reload = async (): Promise<boolean> => {
    if (running) {
      again = true;
      return running;
    }
    running = check().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        void reload();
      }
    });
    return running;
  };

  const schedule = (): void => {
    // Debounce: a Secret update touches several entries at once.
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), 50);
  };

  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(files.certFile), dirname(files.keyFile)])) {
    try {
      const w = watch(dir, { persistent: false }, schedule);
      w.on("error", (e) =>
        opts.logger.warn("tls watch error, relying on polling", { dir, err: e }),
      );
      watchers.push(w);
    } catch (e) {
      opts.logger.warn("cannot watch tls directory, relying on polling", { dir, err: e });
    }
  }
  const poll = setInterval(() => void reload(), opts.pollMs);
  poll.unref();

  return {
    reload,
    stop: () => {
      clearInterval(poll);
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
