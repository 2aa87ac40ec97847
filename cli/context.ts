/** What every command gets: parsed flags, output streams, the clock, the cluster (lazily). */
import { stringify } from "yaml";
import type { Args } from "./args.ts";
import { connect, type Kube } from "./kube.ts";

export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  stdin?: NodeJS.ReadableStream;
}

export interface Ctx {
  args: Args;
  io: Io;
  now(): number;
  /** Colour on: --color always, or auto on a terminal without NO_COLOR. */
  color: boolean;
  /** stdout is a terminal (the watch view redraws in place). */
  tty: boolean;
  kube(): Kube;
  /** Ends long-running commands (--watch, dashboard) on SIGINT/SIGTERM. */
  signal: AbortSignal;
}

export function makeCtx(args: Args, io: Io, signal: AbortSignal): Ctx {
  const tty = io.stdout.isTTY === true;
  const color =
    args.color === "always" ||
    (args.color === "auto" && tty && io.env.NO_COLOR === undefined && io.env.TERM !== "dumb");
  let kube: Kube | undefined;
  return {
    args,
    io,
    now: () => Date.now(),
    color,
    tty,
    kube: () =>
      (kube ??= connect({
        kubeconfig: args.kubeconfig,
        context: args.context,
        namespace: args.namespace,
      })),
    signal,
  };
}

/** json / yaml of a view model; undefined for table output. */
export function structured(ctx: Ctx, value: unknown): string | undefined {
  if (ctx.args.output === "json") return JSON.stringify(value, null, 2) + "\n";
  if (ctx.args.output === "yaml") return stringify(value);
  return undefined;
}
