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

  it("redirects gRPC ports to the gRPC listener in the same chain, idempotently", () => {
    const r = inNetns(`"${SCRIPT}" >/dev/null && "${SCRIPT}" >/dev/null && iptables -w -t nat -S`, {
      VERSO_CAPTURE_PORTS: "8080",
      VERSO_LISTEN: "0.0.0.0:15006",
      VERSO_CAPTURE_GRPC_PORTS: "9090",
      VERSO_GRPC_LISTEN: "0.0.0.0:15007",
    });
    expect(r.code, r.err).toBe(0);
    const rules = r.out.split("\n").filter((l) => l.startsWith("-A "));
    expect(rules).toEqual([
      "-A PREROUTING -p tcp -j VERSO_INBOUND",
      "-A VERSO_INBOUND -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 15006",
      "-A VERSO_INBOUND -p tcp -m tcp --dport 9090 -j REDIRECT --to-ports 15007",
    ]);
  });

  it("captures gRPC ports alone (a gRPC-only pod), to 15007 by default", () => {
    const r = inNetns(`"${SCRIPT}" >/dev/null && iptables -w -t nat -S`, {
      VERSO_CAPTURE_PORTS: "",
      VERSO_CAPTURE_GRPC_PORTS: "9090,9091",
    });
    expect(r.code, r.err).toBe(0);
    const rules = r.out.split("\n").filter((l) => l.startsWith("-A "));
    expect(rules).toEqual([
      "-A PREROUTING -p tcp -j VERSO_INBOUND",
      "-A VERSO_INBOUND -p tcp -m tcp --dport 9090 -j REDIRECT --to-ports 15007",
      "-A VERSO_INBOUND -p tcp -m tcp --dport 9091 -j REDIRECT --to-ports 15007",
    ]);
  });

  it("refuses bad gRPC input before touching the rules already in place", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ VERSO_CAPTURE_GRPC_PORTS: "9090,grpc" }, /bad port 'grpc' in VERSO_CAPTURE_GRPC_PORTS/],
      [
        { VERSO_CAPTURE_GRPC_PORTS: "9090", VERSO_GRPC_LISTEN: "0.0.0.0:x" },
        /bad VERSO_GRPC_LISTEN/,
      ],
      [{ VERSO_CAPTURE_GRPC_PORTS: "8080" }, /port 8080 is in both/],
    ];
    for (const [env, message] of cases) {
      // First a good run, then the bad one: the good rule must survive.
      const r = inNetns(
        `"${SCRIPT}" >/dev/null && VERSO_CAPTURE_GRPC_PORTS="$BAD_GRPC" VERSO_GRPC_LISTEN="$BAD_LISTEN" "${SCRIPT}"; echo "rc=$?"; iptables -w -t nat -S`,
        {
          VERSO_CAPTURE_PORTS: "8080",
          BAD_GRPC: env.VERSO_CAPTURE_GRPC_PORTS ?? "",
          BAD_LISTEN: env.VERSO_GRPC_LISTEN ?? "0.0.0.0:15007",
        },
      );
      expect(r.err).toMatch(message);
      expect(r.out).toContain("rc=1");
      expect(r.out).toContain(
        "-A VERSO_INBOUND -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 15006",
      );
    }
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
