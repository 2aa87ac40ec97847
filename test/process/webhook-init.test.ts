/**
 * deploy/images/verso-init.sh (the iptables capture step the webhook injects) run for real
 * inside a fresh user + network namespace, where it may change nat rules without touching
 * the machine's own.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const SCRIPT = join(import.meta.dirname, "..", "..", "deploy", "images", "verso-init.sh");

function inNetns(script: string, env: Record<string, string> = {}) {
  const r = spawnSync("unshare", ["--user", "--map-root-user", "--net", "sh", "-c", script], {
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
    encoding: "utf8",
    timeout: 15_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const usable = (() => {
  const r = inNetns("iptables -t nat -S >/dev/null");
  return r.code === 0;
})();

describe.skipIf(!usable)("verso-init.sh in a network namespace", () => {
  it("redirects each capture port to the proxy, and a second run changes nothing", () => {
    const r = inNetns(`"${SCRIPT}" >/dev/null && "${SCRIPT}" >/dev/null && iptables -w -t nat -S`, {
      VERSO_CAPTURE_PORTS: "8080,9090",
      VERSO_LISTEN: "0.0.0.0:15006",
    });
    expect(r.code, r.err).toBe(0);
    const rules = r.out.split("\n").filter((l) => l.startsWith("-A "));
    expect(rules).toEqual([
      "-A PREROUTING -p tcp -j VERSO_INBOUND",
      "-A VERSO_INBOUND -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 15006",
      "-A VERSO_INBOUND -p tcp -m tcp --dport 9090 -j REDIRECT --to-ports 15006",
    ]);
  });

  it("installs nothing when there is nothing to capture", () => {
    const r = inNetns(`"${SCRIPT}" && iptables -w -t nat -S`, { VERSO_CAPTURE_PORTS: "" });
    expect(r.code).toBe(0);
    expect(r.out).not.toContain("VERSO_INBOUND");
  });

  it.each([["80,http"], ["0"], ["70000"]])("rejects VERSO_CAPTURE_PORTS=%s", (ports) => {
    const r = inNetns(`"${SCRIPT}"`, { VERSO_CAPTURE_PORTS: ports });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad port/);
  });
});
