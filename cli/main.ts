/**
 * kubectl-verso: `kubectl verso COMMAND` (kubectl runs any `kubectl-verso` on PATH). Flags
 * and commands in args.ts; every failure is a VersoError printed as `error: message [CODE]`.
 *
 * Exit codes: 0 done; 1 refused or failed (API error, unknown app, lint problems); 2 usage.
 */
import { VersoError } from "../shared/errors.ts";
import type { ActionCommand } from "./actions.ts";
import { parseArgs, USAGE, type Command } from "./args.ts";
import { makeCtx, type Ctx, type Io } from "./context.ts";

type Handler = (ctx: Ctx) => Promise<number> | number;

const HANDLERS: Record<Exclude<Command, "help">, () => Promise<Handler>> = {
  list: async () => (await import("./commands/list.ts")).list,
  get: async () => (await import("./commands/get.ts")).get,
  promote: async () => (ctx) => act(ctx, "promote"),
  abort: async () => (ctx) => act(ctx, "abort"),
  pause: async () => (ctx) => act(ctx, "pause"),
  resume: async () => (ctx) => act(ctx, "resume"),
  "set-weight": async () => (ctx) => act(ctx, "set-weight"),
  retry: async () => (ctx) => act(ctx, "retry"),
  undo: async () => (ctx) => act(ctx, "undo"),
  lint: async () => (await import("./commands/lint.ts")).lint,
  dashboard: async () => (await import("./commands/dashboard.ts")).dashboard,
  version: async () => (await import("./commands/version.ts")).version,
};

async function act(ctx: Ctx, command: ActionCommand): Promise<number> {
  return (await import("./commands/act.ts")).act(ctx, command);
}

export async function run(argv: readonly string[], io: Io, signal: AbortSignal): Promise<number> {
  const parsed = parseArgs(argv);
  if (!parsed.ok) {
    io.stderr.write(`error: ${parsed.error}\nRun "kubectl verso --help" for usage.\n`);
    return 2;
  }
  const args = parsed.value;
  if (args.help || args.command === "help") {
    io.stdout.write(USAGE);
    return 0;
  }
  const ctx = makeCtx(args, io, signal);
  try {
    const handler = await HANDLERS[args.command]();
    return await handler(ctx);
  } catch (error) {
    if (error instanceof VersoError) {
      io.stderr.write(`error: ${error.message} [${error.code}]\n`);
      return 1;
    }
    io.stderr.write(
      `error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
}

/** The process: signals end long-running commands cleanly (exit 0 after Ctrl-C in --watch). */
export async function main(): Promise<void> {
  const abort = new AbortController();
  const stop = (): void => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  const code = await run(
    process.argv.slice(2),
    {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      stdin: process.stdin,
    },
    abort.signal,
  );
  process.exitCode = code;
  // Keep-alive sockets of the API client must not hold the process open.
  setTimeout(() => process.exit(code), 50).unref();
  process.removeListener("SIGINT", stop);
  process.removeListener("SIGTERM", stop);
}

if (import.meta.main) await main();
