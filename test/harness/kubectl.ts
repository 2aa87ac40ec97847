/** Runs the harness's kubectl against a kubeconfig; returns code and output, never throws. */
import { spawn } from "node:child_process";
import { REPO_ROOT } from "./paths.ts";

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function kubectl(
  binary: string,
  kubeconfig: string,
  args: string[],
  input?: string,
): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = spawn(binary, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, KUBECONFIG: kubeconfig },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", (e) => resolve({ code: 127, stdout, stderr: stderr + e.message }));
    child.once("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}
