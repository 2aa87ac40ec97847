/** `kubectl verso lint FILE...`: offline; files, directories (*.yaml, *.yml, *.json) or - (stdin). */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { VersoError } from "../../shared/errors.ts";
import { structured, type Ctx } from "../context.ts";
import { formatProblems, lintText, type LintResult } from "../lint.ts";

const MANIFEST = /\.(ya?ml|json)$/i;

function expand(path: string): string[] {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new VersoError("CLI_NO_FILE", `${path}: no such file or directory`);
  }
  if (!stat.isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((entry) => {
      const full = join(path, entry);
      return statSync(full).isDirectory() ? expand(full) : MANIFEST.test(entry) ? [full] : [];
    });
}

async function readStdin(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

export async function lint(ctx: Ctx): Promise<number> {
  const total: LintResult = { objects: 0, releases: 0, problems: [] };
  const files: string[] = [];
  for (const p of ctx.args.positionals) files.push(...(p === "-" ? ["-"] : expand(p)));
  for (const file of files) {
    const text =
      file === "-" ? await readStdin(ctx.io.stdin ?? process.stdin) : readFileSync(file, "utf8");
    const r = lintText(file === "-" ? "<stdin>" : file, text);
    total.objects += r.objects;
    total.releases += r.releases;
    total.problems.push(...r.problems);
  }
  const text = structured(ctx, { files: files.length, ...total });
  if (text !== undefined) ctx.io.stdout.write(text);
  else if (total.problems.length > 0) {
    ctx.io.stdout.write(formatProblems(total.problems) + "\n");
    ctx.io.stderr.write(
      `${total.problems.length} problem(s) in ${files.length} file(s), ${total.objects} object(s)\n`,
    );
  } else {
    ctx.io.stdout.write(
      `${files.length} file(s), ${total.objects} object(s), ${total.releases} release(s): no problems\n`,
    );
  }
  return total.problems.length > 0 ? 1 : 0;
}
