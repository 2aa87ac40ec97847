/**
 * A Dockerfile reader (pure): the stages, their ordered COPY/RUN steps, and the image config
 * (Entrypoint, Cmd, User, Env, WorkingDir, ExposedPorts, Labels, StopSignal) each stage declares.
 * The local image builder (imageBuild.ts) takes the final stage's config from here so the images
 * it assembles without Docker carry exactly what `docker build` would write: nothing is typed
 * twice, so nothing can drift.
 *
 * What a Dockerfile cannot tell: the base image's own config. `FROM node:24-alpine` brings
 * PATH, NODE_VERSION, a CMD and so on from that image's manifest, which is not readable here
 * (no registry). The caller supplies what it knows of a base's Env through `baseEnv` (used for
 * `$PATH`-style substitution too); a base's Entrypoint/Cmd/User/WorkingDir are not inherited.
 * That is harmless for the stages this repo ships: each sets ENTRYPOINT, which resets any
 * inherited CMD (as Docker does), and sets USER and WORKDIR where it needs them.
 *
 * Supported: FROM [AS], ARG (global and per stage, build-arg overrides), ENV (`a=b c="d e"` and
 * legacy `ENV a b`), LABEL, WORKDIR (relative to the previous one), USER, EXPOSE, ENTRYPOINT and
 * CMD (JSON array or shell form), STOPSIGNAL, COPY (--from, --chmod, --chown, --link; JSON form),
 * RUN (shell or JSON form; kept as text for the caller to interpret), line continuations and
 * comments, `$VAR` / `${VAR}` / `${VAR:-word}` / `${VAR:+word}` substitution with quotes and
 * backslash escapes. Anything else (ADD, VOLUME, HEALTHCHECK, SHELL, ONBUILD, heredocs, parser
 * directives other than comments) is refused with its line number rather than half-understood.
 */
import { posix } from "node:path";

export interface ImageConfig {
  User?: string;
  Env: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface CopyStep {
  kind: "copy";
  line: number;
  /** A stage name or index (`--from=build`); undefined: the build context. */
  from?: string;
  chmod?: string;
  chown?: string;
  sources: string[];
  /** Absolute: resolved against the stage's WORKDIR at that point. */
  dest: string;
  /** The dest as written ended with "/" (or there are several sources): it is a directory. */
  destIsDir: boolean;
}

export interface RunStep {
  kind: "run";
  line: number;
  /** Shell form: the text; exec form: the argv. */
  command: string | string[];
  /** WORKDIR at that point. */
  workdir: string;
}

export type Step = CopyStep | RunStep;

export interface Stage {
  index: number;
  name?: string;
  /** The base image reference after ARG substitution. */
  base: string;
  steps: Step[];
  config: ImageConfig;
}

export interface ParseOptions {
  /** `--build-arg NAME=value`s. */
  buildArgs?: Readonly<Record<string, string>>;
  /** What the caller knows of a base image's Env (the Dockerfile cannot show it). */
  baseEnv?: (image: string) => Readonly<Record<string, string>>;
}

export interface Dockerfile {
  stages: Stage[];
  /** The last stage: the image `docker build` tags. */
  final: Stage;
}

export class DockerfileError extends Error {
  constructor(line: number, message: string) {
    super(`Dockerfile line ${line}: ${message}`);
    this.name = "DockerfileError";
  }
}

interface Instruction {
  line: number;
  keyword: string;
  rest: string;
}

/** Joins continuation lines, drops comments and blanks (comment lines inside a continuation too). */
export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let pending: { line: number; text: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (trimmed.startsWith("#")) continue;
    if (trimmed === "") {
      // A blank line inside a continuation is skipped, as Docker does (with a warning).
      continue;
    }
    const continued = /\\\s*$/.test(raw);
    const body = continued ? raw.replace(/\\\s*$/, "") : raw;
    pending = pending
      ? { line: pending.line, text: `${pending.text} ${body.trim()}` }
      : { line: i + 1, text: body.trim() };
    if (continued) continue;
    out.push(split(pending));
    pending = undefined;
  }
  if (pending) out.push(split(pending));
  return out;
}

function split(p: { line: number; text: string }): Instruction {
  const m = /^(\S+)\s*(.*)$/s.exec(p.text);
  return { line: p.line, keyword: (m?.[1] ?? "").toUpperCase(), rest: (m?.[2] ?? "").trim() };
}

type Vars = ReadonlyMap<string, string>;

/**
 * The shell-like word lexer Docker uses for ENV, LABEL, COPY, EXPOSE...: quotes are removed,
 * `\x` escapes x (literal inside single quotes), variables expand outside single quotes.
 * `splitWords` false: one word (for WORKDIR, USER, the legacy ENV value).
 */
export function lex(text: string, vars: Vars, splitWords = true, line = 0): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
      continue;
    }
    if (c === "\\" && i + 1 < text.length) {
      const next = text[i + 1]!;
      // Inside double quotes a backslash only escapes what the shell would escape there.
      if (quote === '"' && !['"', "\\", "$"].includes(next)) word += c;
      else {
        word += next;
        i++;
      }
      inWord = true;
      continue;
    }
    if (c === "$") {
      const [value, end] = expandAt(text, i, vars, line);
      word += value;
      i = end - 1;
      inWord = true;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else word += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
      continue;
    }
    if (splitWords && /\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      continue;
    }
    word += c;
    inWord = true;
  }
  if (quote)
    throw new DockerfileError(line, `unterminated ${quote} quote in ${JSON.stringify(text)}`);
  if (inWord || !splitWords) words.push(word);
  return words;
}

/** `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME:+word}` at `text[i]`: [value, index after]. */
function expandAt(text: string, i: number, vars: Vars, line: number): [string, number] {
  if (text[i + 1] === "{") {
    const close = text.indexOf("}", i + 2);
    if (close < 0) throw new DockerfileError(line, `unterminated \${ in ${JSON.stringify(text)}`);
    const inner = text.slice(i + 2, close);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?$/s.exec(inner);
    if (!m) throw new DockerfileError(line, `unsupported substitution \${${inner}}`);
    const value = vars.get(m[1]!);
    const word = m[3] === undefined ? "" : lex(m[3], vars, false, line)[0]!;
    if (m[2] === "-") return [value === undefined || value === "" ? word : value, close + 1];
    if (m[2] === "+") return [value === undefined || value === "" ? "" : word, close + 1];
    return [value ?? "", close + 1];
  }
  const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
  if (!m) return ["$", i + 1];
  return [vars.get(m[0]) ?? "", i + 1 + m[0].length];
}

/** `["a", "b"]` -> the argv; anything else -> undefined (then it is shell form). */
export function jsonArray(text: string): string[] | undefined {
  if (!text.startsWith("[")) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed) && parsed.every((x) => typeof x === "string")) return parsed;
  } catch {
    // Not JSON: Docker then treats the text as shell form, and so do we.
  }
  return undefined;
}

/** ENTRYPOINT/CMD: exec form as is, shell form wrapped in `/bin/sh -c` (Docker's default SHELL). */
export function commandForm(text: string): string[] {
  return jsonArray(text) ?? ["/bin/sh", "-c", text];
}

/** `ENV a=b c="d e"` or legacy `ENV a b c` (one key, the rest of the line is its value). */
function keyValues(rest: string, vars: Vars, line: number, keyword: string): [string, string][] {
  const first = /^(\S+)(\s+|$)/.exec(rest);
  if (!first) throw new DockerfileError(line, `${keyword} needs arguments`);
  if (!first[1]!.includes("=")) {
    const value = rest.slice(first[0].length);
    if (value === "") throw new DockerfileError(line, `${keyword} ${first[1]} needs a value`);
    return [[first[1]!, lex(value, vars, false, line)[0]!]];
  }
  return lex(rest, vars, true, line).map((w) => {
    const eq = w.indexOf("=");
    if (eq <= 0)
      throw new DockerfileError(line, `${keyword}: ${JSON.stringify(w)} is not key=value`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

function setEnv(env: string[], name: string, value: string): void {
  const at = env.findIndex((e) => e.startsWith(`${name}=`));
  if (at >= 0) env[at] = `${name}=${value}`;
  else env.push(`${name}=${value}`);
}

function parseCopy(
  rest: string,
  vars: Vars,
  line: number,
  workdir: string,
): Omit<CopyStep, "kind" | "line"> {
  const flags: Record<string, string> = {};
  let body = rest;
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(body);
    if (!m) break;
    flags[m[1]!] = lex(m[2] ?? "true", vars, false, line)[0]!;
    body = body.slice(m[0].length);
  }
  for (const flag of Object.keys(flags)) {
    if (!["from", "chmod", "chown", "link"].includes(flag))
      throw new DockerfileError(line, `COPY --${flag} is not supported`);
  }
  if (/^<</.test(body)) throw new DockerfileError(line, "COPY heredocs are not supported");
  const words =
    jsonArray(body)?.map((w) => lex(w, vars, false, line)[0]!) ?? lex(body, vars, true, line);
  if (words.length < 2) throw new DockerfileError(line, "COPY needs a source and a destination");
  const destText = words[words.length - 1]!;
  const sources = words.slice(0, -1);
  return {
    ...(flags.from === undefined ? {} : { from: flags.from }),
    ...(flags.chmod === undefined ? {} : { chmod: flags.chmod }),
    ...(flags.chown === undefined ? {} : { chown: flags.chown }),
    sources,
    dest: posix.resolve(workdir, destText),
    destIsDir: destText.endsWith("/") || destText === "." || sources.length > 1,
  };
}

function exposed(rest: string, vars: Vars, line: number): string[] {
  return lex(rest, vars, true, line).map((p) => {
    const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(p);
    if (!m) throw new DockerfileError(line, `EXPOSE ${p}: not port[/protocol]`);
    return `${m[1]}/${(m[2] ?? "tcp").toLowerCase()}`;
  });
}

const UNSUPPORTED = ["ADD", "VOLUME", "HEALTHCHECK", "SHELL", "ONBUILD", "MAINTAINER"];

export function parseDockerfile(text: string, options: ParseOptions = {}): Dockerfile {
  const buildArgs = options.buildArgs ?? {};
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  let stage: Stage | undefined;
  // Substitution scope of the current stage: its ARGs, then its ENVs (ENV wins, as in Docker).
  let vars = new Map<string, string>();
  let workdir = "/";
  let cmdSetHere = false;

  for (const { line, keyword, rest } of instructions(text)) {
    if (keyword === "FROM") {
      const words = lex(rest, globalArgs, true, line);
      if (words.some((w) => w.startsWith("--")))
        throw new DockerfileError(line, "FROM flags (--platform) are not supported");
      const base = words[0];
      if (
        !base ||
        (words.length !== 1 && !(words.length === 3 && words[1]!.toUpperCase() === "AS"))
      )
        throw new DockerfileError(line, `FROM ${rest}: expected IMAGE [AS NAME]`);
      stage = {
        index: stages.length,
        ...(words[2] === undefined ? {} : { name: words[2] }),
        base,
        steps: [],
        config: { Env: [] },
      };
      stages.push(stage);
      vars = new Map();
      workdir = "/";
      cmdSetHere = false;
      for (const [k, v] of Object.entries(options.baseEnv?.(base) ?? {})) {
        setEnv(stage.config.Env, k, v);
        vars.set(k, v);
      }
      continue;
    }
    if (keyword === "ARG") {
      for (const word of lex(rest, stage ? vars : globalArgs, true, line)) {
        const eq = word.indexOf("=");
        const name = eq < 0 ? word : word.slice(0, eq);
        const dflt = eq < 0 ? (stage ? globalArgs.get(name) : undefined) : word.slice(eq + 1);
        const value = buildArgs[name] ?? dflt;
        const scope = stage ? vars : globalArgs;
        // An ENV of the same name already in scope keeps precedence over the ARG.
        if (
          value !== undefined &&
          !(stage && stage.config.Env.some((e) => e.startsWith(`${name}=`)))
        )
          scope.set(name, value);
      }
      continue;
    }
    if (!stage) throw new DockerfileError(line, `${keyword} before the first FROM`);
    const config = stage.config;
    switch (keyword) {
      case "ENV":
        for (const [k, v] of keyValues(rest, vars, line, "ENV")) {
          setEnv(config.Env, k, v);
          vars.set(k, v);
        }
        break;
      case "LABEL":
        config.Labels ??= {};
        for (const [k, v] of keyValues(rest, vars, line, "LABEL")) config.Labels[k] = v;
        break;
      case "WORKDIR":
        workdir = posix.resolve(workdir, lex(rest, vars, false, line)[0]!);
        config.WorkingDir = workdir;
        break;
      case "USER":
        config.User = lex(rest, vars, false, line)[0]!;
        break;
      case "EXPOSE":
        config.ExposedPorts ??= {};
        for (const port of exposed(rest, vars, line)) config.ExposedPorts[port] = {};
        break;
      case "ENTRYPOINT":
        config.Entrypoint = commandForm(rest);
        // Docker: ENTRYPOINT drops an inherited CMD, not one this stage set before it.
        if (!cmdSetHere) delete config.Cmd;
        break;
      case "CMD":
        config.Cmd = commandForm(rest);
        cmdSetHere = true;
        break;
      case "STOPSIGNAL":
        config.StopSignal = lex(rest, vars, false, line)[0]!;
        break;
      case "COPY":
        stage.steps.push({ kind: "copy", line, ...parseCopy(rest, vars, line, workdir) });
        break;
      case "RUN":
        if (/^--/.test(rest))
          throw new DockerfileError(line, "RUN flags (--mount...) are not supported");
        if (/<<-?\s*['"]?[A-Za-z_]/.test(rest))
          throw new DockerfileError(line, "RUN heredocs are not supported");
        stage.steps.push({ kind: "run", line, command: jsonArray(rest) ?? rest, workdir });
        break;
      default:
        throw new DockerfileError(
          line,
          UNSUPPORTED.includes(keyword)
            ? `${keyword} is not supported by this reader`
            : `unknown instruction ${keyword}`,
        );
    }
  }
  const final = stages[stages.length - 1];
  if (!final) throw new DockerfileError(1, "no FROM: not a Dockerfile");
  return { stages, final };
}

/** The stage a `COPY --from=` names: by `AS` name or by index. */
export function stageNamed(file: Dockerfile, ref: string): Stage {
  const found =
    file.stages.find((s) => s.name === ref) ??
    (/^\d+$/.test(ref) ? file.stages[Number(ref)] : undefined);
  if (!found)
    throw new Error(`COPY --from=${ref}: no such stage (external images are not supported)`);
  return found;
}
