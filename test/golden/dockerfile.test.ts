/**
 * The Dockerfile reader the local image builder takes its image config from
 * (test/harness/node/dockerfile.ts): the three Dockerfiles that ship, read as `docker build`
 * would write their config, and the edge cases of the syntax they could grow into.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  commandForm,
  lex,
  parseDockerfile,
  stageNamed,
  type CopyStep,
  type RunStep,
} from "../harness/node/dockerfile.ts";
import { REPO_ROOT } from "../harness/paths.ts";

const read = (name: string): string =>
  readFileSync(join(REPO_ROOT, "deploy", "images", name), "utf8");
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const baseEnv = (): Record<string, string> => ({ PATH });

describe("the shipped Dockerfiles", () => {
  it("sidecar: the bundle stage, then bun as uid 1337 with iptables and verso-init", () => {
    const file = parseDockerfile(read("Dockerfile.sidecar"), { baseEnv });
    expect(file.stages.map((s) => [s.name, s.base])).toEqual([
      ["build", "oven/bun:1.4.4-alpine"],
      [undefined, "oven/bun:1.4.4-alpine"],
    ]);
    expect(file.final.config).toEqual({
      Env: [`PATH=${PATH}`, "BUN_RUNTIME_TRANSPILER_CACHE_PATH=0"],
      User: "1337:1337",
      ExposedPorts: { "15006/tcp": {}, "15020/tcp": {} },
      Entrypoint: ["bun", "/app/verso-proxy.js"],
    });
    const build = stageNamed(file, "build");
    const run = build.steps.find((s): s is RunStep => s.kind === "run");
    expect(run?.command).toBe(
      "bun build --target=bun --production sidecar/main.ts --outfile /out/verso-proxy.js",
    );
    expect(run?.workdir).toBe("/src");
    const copies = file.final.steps.filter((s): s is CopyStep => s.kind === "copy");
    expect(copies).toMatchObject([
      { from: "build", sources: ["/out/verso-proxy.js"], dest: "/app/verso-proxy.js" },
      {
        chmod: "755",
        sources: ["deploy/images/verso-init.sh"],
        dest: "/usr/local/bin/verso-init",
        destIsDir: false,
      },
    ]);
    expect(file.final.steps).toContainEqual(
      expect.objectContaining({ kind: "run", command: "apk add --no-cache iptables" }),
    );
  });

  it("webhook: node as 65532 in /app, production env, listening on 9443 by default", () => {
    const file = parseDockerfile(read("Dockerfile.webhook"), { baseEnv });
    expect(file.stages.map((s) => s.name)).toEqual(["build", "deps", undefined]);
    expect(file.final.base).toBe("node:24-alpine");
    expect(file.final.config).toEqual({
      Env: [`PATH=${PATH}`, "NODE_ENV=production"],
      WorkingDir: "/app",
      User: "65532:65532",
      ExposedPorts: { "9443/tcp": {} },
      Entrypoint: ["node", "dist/webhook/main.js"],
      Cmd: ["--listen=0.0.0.0:9443"],
    });
    const copies = file.final.steps.filter((s): s is CopyStep => s.kind === "copy");
    expect(copies.map((c) => [c.from, c.sources[0], c.dest])).toEqual([
      ["deps", "/src/package.json", "/app/package.json"],
      ["deps", "/src/node_modules", "/app/node_modules"],
      ["build", "/src/dist", "/app/dist"],
    ]);
    const deps = stageNamed(file, "deps").steps.filter((s): s is RunStep => s.kind === "run");
    expect(deps.map((r) => r.command)).toEqual([
      "npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force",
    ]);
  });

  it("demo: ARG VERSION becomes ENV VERSION (default v1, or the build arg)", () => {
    const text = read("Dockerfile.demo");
    const v1 = parseDockerfile(text, { baseEnv }).final.config;
    const v2 = parseDockerfile(text, { baseEnv, buildArgs: { VERSION: "v2" } }).final.config;
    expect(v1).toEqual({
      Env: [`PATH=${PATH}`, "VERSION=v1", "NODE_ENV=production"],
      WorkingDir: "/app",
      User: "node",
      ExposedPorts: { "8080/tcp": {}, "9090/tcp": {} },
      Entrypoint: ["node", "--disable-warning=ExperimentalWarning", "server.ts"],
    });
    expect(v2.Env).toEqual([`PATH=${PATH}`, "VERSION=v2", "NODE_ENV=production"]);
    // The demo app reads VERSION from its env, so the tag is what it answers with.
    expect(readFileSync(join(REPO_ROOT, "test", "demo-app", "server.ts"), "utf8")).toMatch(
      /process\.env\.VERSION/,
    );
  });
});

const final = (text: string, buildArgs: Record<string, string> = {}) =>
  parseDockerfile(text, { buildArgs }).final;

describe("Dockerfile syntax", () => {
  it("ENTRYPOINT and CMD: exec form as is, shell form through /bin/sh -c, bad JSON is shell", () => {
    expect(commandForm('["a", "b c"]')).toEqual(["a", "b c"]);
    expect(commandForm("node main.js --x")).toEqual(["/bin/sh", "-c", "node main.js --x"]);
    expect(commandForm("[not json")).toEqual(["/bin/sh", "-c", "[not json"]);
    expect(commandForm("[1, 2]")).toEqual(["/bin/sh", "-c", "[1, 2]"]);
    const c = final("FROM x\nENTRYPOINT exec app --flag\nCMD echo hi").config;
    expect(c.Entrypoint).toEqual(["/bin/sh", "-c", "exec app --flag"]);
    expect(c.Cmd).toEqual(["/bin/sh", "-c", "echo hi"]);
  });

  it("ENTRYPOINT keeps a CMD this stage set before it and drops none it did not", () => {
    expect(final('FROM x\nCMD ["a"]\nENTRYPOINT ["e"]').config.Cmd).toEqual(["a"]);
    expect(final('FROM x\nENTRYPOINT ["e"]').config.Cmd).toBeUndefined();
  });

  it("ENV: key=value pairs with quotes and escapes, and the legacy `ENV key rest of line`", () => {
    const c = final("FROM x\nENV A=\"x y\" B=z\\ w C='$A'\nENV D the rest  of it\nENV E=$A-${B}");
    expect(c.config.Env).toEqual(["A=x y", "B=z w", "C=$A", "D=the rest  of it", "E=x y-z w"]);
  });

  it("ENV replaces an earlier value in place", () => {
    expect(final("FROM x\nENV A=1 B=2\nENV A=3").config.Env).toEqual(["A=3", "B=2"]);
  });

  it("ARG: default, build-arg override, global ARG in FROM and re-declared in a stage", () => {
    const text = [
      "ARG BASE=node:24-alpine",
      "ARG V=global",
      "FROM ${BASE}",
      "ARG V",
      "ARG W=dflt",
      "ENV V=$V W=${W}",
    ].join("\n");
    expect(final(text).base).toBe("node:24-alpine");
    expect(final(text).config.Env).toEqual(["V=global", "W=dflt"]);
    const over = final(text, { BASE: "node:25-slim", V: "cli", W: "w2" });
    expect(over.base).toBe("node:25-slim");
    expect(over.config.Env).toEqual(["V=cli", "W=w2"]);
  });

  it("a global ARG is not visible in a stage unless re-declared there", () => {
    expect(final("ARG V=1\nFROM x\nENV V=[$V]").config.Env).toEqual(["V=[]"]);
  });

  it("$VAR, ${VAR}, ${VAR:-word}, ${VAR:+word}; single quotes and \\$ stay literal", () => {
    const vars = new Map([
      ["A", "a"],
      ["E", ""],
    ]);
    expect(lex("$A ${A} ${E:-d} ${U:-d} ${A:+set} ${U:+set}x", vars)).toEqual([
      "a",
      "a",
      "d",
      "d",
      "set",
      "x",
    ]);
    expect(lex("'$A' \\$A \"$A b\"", vars)).toEqual(["$A", "$A", "a b"]);
    expect(lex("$1 $", vars)).toEqual(["$1", "$"]);
  });

  it("ENV wins over an ARG of the same name", () => {
    expect(final("FROM x\nENV V=env\nARG V=arg\nENV W=$V", { V: "cli" }).config.Env).toEqual([
      "V=env",
      "W=env",
    ]);
  });

  it("multi-stage: only the last stage's config, nothing of the earlier stages", () => {
    const f = final(
      'FROM a AS one\nENV SECRET=1\nUSER 7\nEXPOSE 1\nFROM b\nENTRYPOINT ["x"]\nCOPY --from=one /o /p',
    );
    expect(f.config).toEqual({ Env: [], Entrypoint: ["x"] });
    expect(f.base).toBe("b");
  });

  it("WORKDIR chains relative paths; COPY resolves its dest against it", () => {
    const f = final(
      "FROM x\nWORKDIR /a\nWORKDIR b/../c\nCOPY f g\nCOPY f h/\nCOPY f k ./\nCOPY a .",
    );
    expect(f.config.WorkingDir).toBe("/a/c");
    const copies = f.steps as CopyStep[];
    expect(copies.map((c) => [c.sources.join(","), c.dest, c.destIsDir])).toEqual([
      ["f", "/a/c/g", false],
      ["f", "/a/c/h", true],
      ["f,k", "/a/c", true],
      ["a", "/a/c", true],
    ]);
  });

  it("COPY flags and JSON form", () => {
    const [c] = final('FROM x\nCOPY --from=0 --chmod=755 --chown=0:0 ["/a b", "/d"]').steps as [
      CopyStep,
    ];
    expect(c).toMatchObject({
      from: "0",
      chmod: "755",
      chown: "0:0",
      sources: ["/a b"],
      dest: "/d",
    });
  });

  it("EXPOSE: tcp by default, protocols kept, duplicates once", () => {
    expect(final("FROM x\nEXPOSE 80 53/udp 80/tcp 9/SCTP").config.ExposedPorts).toEqual({
      "80/tcp": {},
      "53/udp": {},
      "9/sctp": {},
    });
  });

  it("USER, LABEL, STOPSIGNAL, lower-case keywords", () => {
    const c = final('from x\nuser ${U:-app}:grp\nlabel a=b "c d"=e\nstopsignal SIGINT').config;
    expect(c).toMatchObject({
      User: "app:grp",
      Labels: { a: "b", "c d": "e" },
      StopSignal: "SIGINT",
    });
  });

  it("continuation lines, comments inside them, and blank lines", () => {
    const f = final(
      '# header\nFROM x\n\nRUN a \\\n  # a comment\n  && b \\\n\n  && c\nENTRYPOINT ["e", \\\n "f"]',
    );
    expect((f.steps[0] as RunStep).command).toBe("a && b && c");
    expect(f.config.Entrypoint).toEqual(["e", "f"]);
  });

  it("RUN: shell form as text, exec form as argv, with the WORKDIR", () => {
    const steps = final('FROM x\nWORKDIR /w\nRUN ["a", "b"]\nRUN a $B').steps as RunStep[];
    expect(steps).toMatchObject([
      { command: ["a", "b"], workdir: "/w", line: 3 },
      { command: "a $B", workdir: "/w", line: 4 },
    ]);
  });

  it("the base image's env comes from the caller and can be extended", () => {
    const f = parseDockerfile("FROM node:24\nENV PATH=/opt/bin:$PATH", {
      baseEnv: (image): Record<string, string> =>
        image === "node:24" ? { PATH: "/usr/bin", NODE_VERSION: "24" } : {},
    }).final;
    expect(f.config.Env).toEqual(["PATH=/opt/bin:/usr/bin", "NODE_VERSION=24"]);
  });

  it("refuses what it does not understand, with the line", () => {
    expect(() => final("FROM x\nADD a b")).toThrow(/line 2: ADD is not supported/);
    expect(() => final("FROM x\nHEALTHCHECK CMD true")).toThrow(/line 2: HEALTHCHECK/);
    expect(() => final("FROM x\nFROBNICATE")).toThrow(/line 2: unknown instruction FROBNICATE/);
    expect(() => final("ENV A=1\nFROM x")).toThrow(/line 1: ENV before the first FROM/);
    expect(() => final("# only a comment")).toThrow(/no FROM/);
    expect(() => final("FROM --platform=linux/arm64 x")).toThrow(/--platform/);
    expect(() => final("FROM x\nRUN --mount=type=cache,target=/c a")).toThrow(/RUN flags/);
    expect(() => final("FROM x\nCOPY --exclude=a b c")).toThrow(/--exclude/);
    expect(() => final("FROM x\nEXPOSE http")).toThrow(/EXPOSE http/);
    expect(() => final('FROM x\nENV A="open')).toThrow(/unterminated/);
    expect(() => final("FROM x\nENV A=${B/x/y}")).toThrow(/unsupported substitution/);
    const f = parseDockerfile("FROM x AS a\nFROM y");
    expect(() => stageNamed(f, "nope")).toThrow(/no such stage/);
    expect(stageNamed(f, "0").base).toBe("x");
  });
});
