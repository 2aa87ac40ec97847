/**
 * `kubectl verso` command line: argv -> a command and its options. Pure. kubectl's own
 * connection flags (`-n`, `-A`, `--context`, `--kubeconfig`) mean what they mean to kubectl.
 */
import { parseDuration } from "../shared/duration.ts";
import { err, ok, type Result } from "../shared/errors.ts";

export const COMMANDS = [
  "list",
  "get",
  "promote",
  "abort",
  "pause",
  "resume",
  "set-weight",
  "retry",
  "undo",
  "lint",
  "dashboard",
  "version",
  "help",
] as const;
export type Command = (typeof COMMANDS)[number];

export type Output = "table" | "json" | "yaml";
export type ColorMode = "auto" | "always" | "never";

export interface Args {
  command: Command;
  /** Positional arguments after the command (APP, N, FILE...). */
  positionals: string[];
  namespace: string | undefined;
  allNamespaces: boolean;
  context: string | undefined;
  kubeconfig: string | undefined;
  output: Output;
  watch: boolean;
  /** `promote --full`: promote at once instead of one step. */
  full: boolean;
  /** Refresh period of `--watch` and the dashboard, and the window of live numbers (ms). */
  intervalMs: number;
  /** `--watch`: stop after this many frames (0: until interrupted). */
  count: number;
  /** `dashboard`: port on 127.0.0.1 (0: any free port). */
  port: number;
  color: ColorMode;
  /** Skip the pods' live numbers (no `pods/proxy` right needed). */
  metrics: boolean;
  help: boolean;
}

export const DEFAULT_INTERVAL_MS = 2_000;
const DEFAULT_PORT = 7420;

export const USAGE = `kubectl verso: progressive delivery from the command line

Usage: kubectl verso COMMAND [ARGS] [FLAGS]

Commands:
  list                      releases in the namespace (-A: every namespace)
  get APP                   one release: versions, phase, gates, live numbers, events
  get APP --watch           the same, redrawn every --interval (Ctrl-C stops)
  promote APP [--full]      next step of an automated canary (--full: all the way now)
  abort APP                 roll the release back now (verso.dev/abort)
  pause APP | resume APP    hold / continue an automated canary (verso.dev/paused)
  set-weight APP N          a manual canary's weight, percent (verso.dev/weight)
  retry APP                 start a failed release over
  undo APP                  back to the previous stable version
  lint FILE...              check the verso.dev/ annotations of manifests (offline; - = stdin)
  dashboard                 serve a local web dashboard on 127.0.0.1 (--port)
  version                   print the CLI version

Flags:
  -n, --namespace NS        namespace (default: the context's, else "default")
  -A, --all-namespaces      list: every namespace
      --context NAME        kubeconfig context
      --kubeconfig FILE     kubeconfig file (default: $KUBECONFIG, ~/.kube/config)
  -o, --output FMT          table (default), json or yaml (every command but dashboard)
  -w, --watch               get: live view
      --interval DUR        refresh period and live-number window (default 2s)
      --count N             --watch: stop after N frames
      --full                promote: promote at once
      --no-metrics          do not read the proxies' numbers (no pods/proxy right needed)
      --color MODE          auto (default: colour on a terminal), always, never
      --port N              dashboard port (default ${DEFAULT_PORT}; 0 = any free port)
  -h, --help                this text
`;

type Flag =
  | { kind: "bool"; set: (a: Args) => void }
  | { kind: "value"; set: (a: Args, v: string) => string | undefined };

const FLAGS: Record<string, Flag> = {
  "-A": { kind: "bool", set: (a) => void (a.allNamespaces = true) },
  "--all-namespaces": { kind: "bool", set: (a) => void (a.allNamespaces = true) },
  "-w": { kind: "bool", set: (a) => void (a.watch = true) },
  "--watch": { kind: "bool", set: (a) => void (a.watch = true) },
  "--full": { kind: "bool", set: (a) => void (a.full = true) },
  "--no-metrics": { kind: "bool", set: (a) => void (a.metrics = false) },
  "-h": { kind: "bool", set: (a) => void (a.help = true) },
  "--help": { kind: "bool", set: (a) => void (a.help = true) },
  "-n": { kind: "value", set: (a, v) => void (a.namespace = v) },
  "--namespace": { kind: "value", set: (a, v) => void (a.namespace = v) },
  "--context": { kind: "value", set: (a, v) => void (a.context = v) },
  "--kubeconfig": { kind: "value", set: (a, v) => void (a.kubeconfig = v) },
  "-o": { kind: "value", set: (a, v) => setOutput(a, v) },
  "--output": { kind: "value", set: (a, v) => setOutput(a, v) },
  "--interval": {
    kind: "value",
    set: (a, v) => {
      const d = parseDuration(v);
      if (!d.ok) return `--interval: ${d.error}`;
      if (d.value < 100) return "--interval: use at least 100ms";
      a.intervalMs = d.value;
      return undefined;
    },
  },
  "--count": {
    kind: "value",
    set: (a, v) => {
      if (!/^\d+$/.test(v)) return `--count: ${JSON.stringify(v)} is not a whole number`;
      a.count = Number(v);
      return undefined;
    },
  },
  "--port": {
    kind: "value",
    set: (a, v) => {
      const n = Number(v);
      if (!/^\d+$/.test(v) || n > 65535) return `--port: ${JSON.stringify(v)} is not a port`;
      a.port = n;
      return undefined;
    },
  },
  "--color": {
    kind: "value",
    set: (a, v) => {
      if (v !== "auto" && v !== "always" && v !== "never")
        return `--color: use auto, always or never, not ${JSON.stringify(v)}`;
      a.color = v;
      return undefined;
    },
  },
};

function setOutput(a: Args, v: string): string | undefined {
  const out = v === "wide" ? "table" : v;
  if (out !== "table" && out !== "json" && out !== "yaml")
    return `--output: use json, yaml or table, not ${JSON.stringify(v)}`;
  a.output = out;
  return undefined;
}

const isCommand = (s: string): s is Command => (COMMANDS as readonly string[]).includes(s);

/** argv (without node and the script) -> Args, or a usage error naming the problem. */
export function parseArgs(argv: readonly string[]): Result<Args, string> {
  const a: Args = {
    command: "help",
    positionals: [],
    namespace: undefined,
    allNamespaces: false,
    context: undefined,
    kubeconfig: undefined,
    output: "table",
    watch: false,
    full: false,
    intervalMs: DEFAULT_INTERVAL_MS,
    count: 0,
    port: DEFAULT_PORT,
    color: "auto",
    metrics: true,
    help: false,
  };
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === "--") {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith("-") || word === "-") {
      words.push(word);
      continue;
    }
    const eq = word.startsWith("--") ? word.indexOf("=") : -1;
    // `-nshop` is kubectl's short form with the value attached.
    const attached = !word.startsWith("--") && word.length > 2;
    const name = eq > 0 ? word.slice(0, eq) : attached ? word.slice(0, 2) : word;
    const flag = FLAGS[name];
    if (!flag) return err(`unknown flag ${name}`);
    if (flag.kind === "bool") {
      if (eq > 0 || attached) return err(`${name} takes no value`);
      flag.set(a);
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = word.slice(eq + 1);
    else if (attached) value = word.slice(2);
    else value = argv[++i];
    if (value === undefined || value === "") return err(`${name} needs a value`);
    const problem = flag.set(a, value);
    if (problem) return err(problem);
  }
  const [command, ...positionals] = words;
  if (command === undefined) {
    a.help = true;
    return ok(a);
  }
  if (!isCommand(command)) return err(`unknown command ${JSON.stringify(command)}`);
  a.command = command;
  a.positionals = positionals;
  if (command === "help") a.help = true;
  return checkArity(a);
}

const ARITY: Record<Command, { min: number; max: number; names: string }> = {
  list: { min: 0, max: 0, names: "" },
  get: { min: 1, max: 1, names: "APP" },
  promote: { min: 1, max: 1, names: "APP" },
  abort: { min: 1, max: 1, names: "APP" },
  pause: { min: 1, max: 1, names: "APP" },
  resume: { min: 1, max: 1, names: "APP" },
  "set-weight": { min: 2, max: 2, names: "APP N" },
  retry: { min: 1, max: 1, names: "APP" },
  undo: { min: 1, max: 1, names: "APP" },
  lint: { min: 1, max: Infinity, names: "FILE..." },
  dashboard: { min: 0, max: 0, names: "" },
  version: { min: 0, max: 0, names: "" },
  help: { min: 0, max: Infinity, names: "" },
};

function checkArity(a: Args): Result<Args, string> {
  if (a.help) return ok(a);
  const want = ARITY[a.command];
  const n = a.positionals.length;
  if (n < want.min || n > want.max) {
    const usage = `kubectl verso ${a.command}${want.names ? ` ${want.names}` : ""}`;
    return err(
      n < want.min
        ? `${a.command}: missing ${want.names.split(" ").slice(n).join(" ")} (usage: ${usage})`
        : `${a.command}: unexpected ${JSON.stringify(a.positionals[want.max])} (usage: ${usage})`,
    );
  }
  if (a.watch && a.command !== "get") return err("--watch works with get only");
  if (a.full && a.command !== "promote") return err("--full works with promote only");
  if (a.allNamespaces && a.command !== "list" && a.command !== "dashboard")
    return err(`-A works with list and dashboard only; ${a.command} needs one namespace (-n)`);
  return ok(a);
}
