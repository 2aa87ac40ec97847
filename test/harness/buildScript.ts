/**
 * Runs one of the scripts that build Go programs from their modules (scripts/build-kube.sh,
 * scripts/build-helm.sh, scripts/build-grafana-lint.sh): their progress goes to `log` line by line (without the module
 * downloads), and the last line of their stdout is what they built.
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";

export function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Resolves the script's last stdout line once `accept` takes it; rejects otherwise. */
export function runBuildScript(
  script: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
  accept: (lastLine: string) => boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) {
        if (line.length > 0 && !line.startsWith("go: downloading")) log(line);
      }
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      const last = stdout.trim().split("\n").pop() ?? "";
      if (code === 0 && accept(last)) resolve(last);
      else reject(new Error(`${script} failed (exit ${code}); see its output above`));
    });
  });
}
