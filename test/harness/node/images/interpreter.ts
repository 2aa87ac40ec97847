/**
 * Runs a parsed Dockerfile (dockerfile.ts) on this host, stage by stage, each stage a
 * directory: COPY takes the same sources from the checkout or an earlier stage, and each RUN
 * command is mapped (planRun, pure) to the one local action that stands in for it. A command
 * with no stand-in fails the build naming the Dockerfile line: a change to a Dockerfile can
 * never be skipped without anyone noticing.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { REPO_ROOT } from "../../paths.ts";
import {
  lex,
  stageNamed,
  type CopyStep,
  type Dockerfile,
  type RunStep,
  type Stage,
} from "../dockerfile.ts";
import { baseParts, bunBinary, bunPart, iptablesPart, nodeBinary, nodePart } from "./baseImages.ts";
import { need, run } from "./host.ts";
import { copyProductionDeps } from "./npmClosure.ts";
import type { Part } from "./parts.ts";
import { chmodTree, copyInto, Rootfs } from "./rootfs.ts";

/** What one command of a RUN line does here. */
export type RunAction =
  | { kind: "bun build"; args: string[] }
  | { kind: "npm ci"; flags: string[] }
  | { kind: "npm run"; script: string }
  | { kind: "apk add iptables" };

const NPM_CI_FLAGS = ["--no-audit", "--no-fund", "--omit=dev", "--ignore-scripts"];

/**
 * The local actions for a RUN step, in order, or an error naming its line. Only simple
 * commands joined by && are read: anything a shell would expand could mean something the
 * stand-ins do not do. The checkout's tools stand in for a build stage's; in the final stage
 * (the image itself) only `apk add iptables` has a stand-in.
 */
export function planRun(step: RunStep, where: string, isFinal: boolean): RunAction[] {
  if (Array.isArray(step.command)) throw new Error(`${where}: exec-form RUN is not supported`);
  if (/[|;<>`$(){}*?\\]/.test(step.command.replace(/&&/g, "")))
    throw new Error(
      `${where}: RUN ${step.command}: only simple commands joined by && are supported`,
    );
  const actions: RunAction[] = [];
  for (const simple of step.command.split("&&")) {
    const argv = lex(simple.trim(), new Map(), true, step.line);
    const [cmd, sub] = argv;
    if (cmd === "bun" && sub === "build" && !isFinal)
      actions.push({ kind: "bun build", args: argv.slice(1) });
    else if (cmd === "npm" && sub === "ci" && !isFinal) {
      const flags = argv.slice(2);
      for (const f of flags)
        if (!NPM_CI_FLAGS.includes(f)) throw new Error(`${where}: npm ci ${f} is not supported`);
      actions.push({ kind: "npm ci", flags });
    } else if (cmd === "npm" && sub === "run" && argv.length === 3 && !isFinal)
      actions.push({ kind: "npm run", script: argv[2]! });
    else if (argv.join(" ") === "npm cache clean --force")
      continue; // this stage never had a cache
    else if (cmd === "apk" && sub === "add") {
      const packages = argv.slice(2).filter((a) => a !== "--no-cache");
      if (packages.join(" ") !== "iptables")
        throw new Error(
          `${where}: apk add ${packages.join(" ")}: only iptables has a Debian stand-in here`,
        );
      actions.push({ kind: "apk add iptables" });
    } else {
      throw new Error(
        `${where}: the local builder cannot run \`${simple.trim()}\` (teach images/interpreter.ts, or use Docker)`,
      );
    }
  }
  return actions;
}

/** The host part whose version decides what an action makes (npm ci's is the lockfile). */
function actionPart(action: RunAction): Part | undefined {
  if (action.kind === "bun build") return bunPart();
  if (action.kind === "npm run") return nodePart();
  if (action.kind === "apk add iptables") return iptablesPart();
  return undefined;
}

const lineOf = (name: string, line: number): string => `${name} line ${line}`;

/** The host parts a Dockerfile's build pulls in (for the cache key), without building. */
export function dockerfileParts(file: Dockerfile, name: string): Part[] {
  const parts = baseParts(file.final.base);
  for (const stage of file.stages) {
    const isFinal = stage === file.final;
    if (!isFinal) baseParts(stage.base); // version checks of build stages' bases
    for (const step of stage.steps) {
      if (step.kind !== "run") continue;
      for (const action of planRun(step, lineOf(name, step.line), isFinal)) {
        const p = actionPart(action);
        if (p) parts.push(p);
      }
    }
  }
  return parts;
}

/** Every build-context path the Dockerfile COPYs (their content is part of the key). */
export function contextSources(file: Dockerfile): string[] {
  const out = new Set<string>();
  for (const stage of file.stages)
    for (const step of stage.steps)
      if (step.kind === "copy" && step.from === undefined) step.sources.forEach((s) => out.add(s));
  return [...out].sort();
}

interface StageRun {
  file: Dockerfile;
  /** The Dockerfile's path, for errors. */
  name: string;
  /** The roots of the stages run so far, by index: what COPY --from reads. */
  roots: Map<number, Rootfs>;
}

function copyStep(step: CopyStep, ctx: StageRun, root: Rootfs): void {
  const where = lineOf(ctx.name, step.line);
  if (step.chown !== undefined && !/^(0|root)(:(0|root))?$/.test(step.chown))
    throw new Error(`${where}: COPY --chown=${step.chown}: the layer is written root-owned only`);
  let from: Rootfs | undefined;
  if (step.from !== undefined) {
    from = ctx.roots.get(stageNamed(ctx.file, step.from).index);
    if (!from) throw new Error(`${where}: COPY --from=${step.from} names a later stage`);
  }
  const dest = root.at(step.dest);
  root.mkdir(step.destIsDir ? step.dest : posix.dirname(step.dest));
  for (const source of step.sources) {
    if (/[*?[]/.test(source))
      throw new Error(`${where}: COPY wildcards are not supported (${source})`);
    const normal = posix.normalize(source);
    if (!from && (posix.isAbsolute(normal) || normal.startsWith("..")))
      throw new Error(`${where}: COPY ${source} is outside the build context`);
    const src = from ? from.at(normal) : join(REPO_ROOT, normal);
    if (!existsSync(src))
      throw new Error(`${where}: COPY ${source}: not found in ${step.from ?? "the build context"}`);
    const target = copyInto(src, dest, step.destIsDir);
    if (step.chmod !== undefined) chmodTree(target, parseInt(step.chmod, 8));
  }
}

/** `bun build` with the Dockerfile's arguments; absolute paths are the stage's, under its root. */
function bunBuild(args: string[], root: Rootfs, cwd: string): void {
  const mapped = args.map((arg) => {
    const m = /^(--[a-z-]+=)?(\/.*)$/.exec(arg);
    if (!m) return arg;
    const path = root.at(m[2]!);
    mkdirSync(dirname(path), { recursive: true });
    return `${m[1] ?? ""}${path}`;
  });
  run(bunBinary(), mapped, { cwd });
}

function npmCi(flags: string[], cwd: string, where: string): void {
  const lockText = readFileSync(
    need(join(cwd, "package-lock.json"), `${where}: npm ci needs package-lock.json`),
    "utf8",
  );
  if (lockText !== readFileSync(join(REPO_ROOT, "package-lock.json"), "utf8"))
    throw new Error(
      `${where}: the stage's package-lock.json is not the checkout's (node_modules was installed from that)`,
    );
  if (flags.includes("--omit=dev")) copyProductionDeps(lockText, cwd);
  // A full install is only used by the stage's own build commands: the checkout's will do.
  else symlinkSync(join(REPO_ROOT, "node_modules"), join(cwd, "node_modules"));
}

/** `npm run NAME`: the package.json script through sh, with node_modules/.bin and Node 24 first. */
function npmRun(script: string, cwd: string, where: string): void {
  const scripts = (
    JSON.parse(readFileSync(join(cwd, "package.json"), "utf8")) as {
      scripts?: Record<string, string>;
    }
  ).scripts;
  const command = scripts?.[script];
  if (command === undefined) throw new Error(`${where}: package.json has no script ${script}`);
  if (scripts?.[`pre${script}`] !== undefined || scripts?.[`post${script}`] !== undefined)
    throw new Error(`${where}: pre/post scripts of ${script} are not supported`);
  const path = [
    join(cwd, "node_modules", ".bin"),
    dirname(nodeBinary()),
    process.env.PATH ?? "",
  ].join(":");
  run("sh", ["-c", command], { cwd, env: { ...process.env, PATH: path } });
}

function runAction(action: RunAction, root: Rootfs, cwd: string, where: string): void {
  switch (action.kind) {
    case "bun build":
      return bunBuild(action.args, root, cwd);
    case "npm ci":
      return npmCi(action.flags, cwd, where);
    case "npm run":
      return npmRun(action.script, cwd, where);
    case "apk add iptables":
      return root.add(iptablesPart());
  }
}

function runStage(stage: Stage, ctx: StageRun, root: Rootfs, isFinal: boolean): void {
  // Every stage's base is version-checked, but build stages run their commands with the
  // checkout's tools: only the image needs its base's files.
  const base = baseParts(stage.base);
  if (isFinal) for (const p of base) root.add(p);
  for (const step of stage.steps) {
    if (step.kind === "copy") {
      copyStep(step, ctx, root);
      continue;
    }
    const where = lineOf(ctx.name, step.line);
    const actions = planRun(step, where, isFinal);
    const cwd = root.mkdir(step.workdir);
    for (const action of actions) runAction(action, root, cwd, where);
  }
  // Docker creates the WORKDIR even when nothing is copied into it.
  if (stage.config.WorkingDir !== undefined) root.mkdir(stage.config.WorkingDir);
}

/** Runs every stage into `work`; returns the final stage's root. */
export function runDockerfile(file: Dockerfile, name: string, work: string): Rootfs {
  const ctx: StageRun = { file, name, roots: new Map() };
  let final: Rootfs | undefined;
  for (const stage of file.stages) {
    const isFinal = stage === file.final;
    const root = new Rootfs(join(work, `stage-${stage.index}`));
    runStage(stage, ctx, root, isFinal);
    ctx.roots.set(stage.index, root);
    if (isFinal) final = root;
  }
  return final!;
}
