/**
 * A range of non-loopback addresses that is local to this machine, for pods whose IPs the
 * API server must proxy to: the apiserver's pod proxy subresource (`pods/NAME:PORT/proxy`)
 * refuses pod IPs that are not global unicast ("address not allowed"), and the stand-in
 * kubelet's default range is 127.0.0.0/8. A `local` route on `lo` (Linux "AnyIP") makes every
 * address of the range bindable and reachable here, like the loopback range, without an
 * address per pod. 198.18.0.0/15 is reserved for benchmarking (RFC 2544), never routed on the
 * internet. Needs root (CAP_NET_ADMIN) and `ip`; without them the caller gets the reason.
 */
import { spawnSync } from "node:child_process";

export interface LocalRange {
  /** First pod address to give the kubelet. */
  firstAddress: string;
  /** Remove the route again. */
  remove(): void;
}

const ip = (...args: string[]) => spawnSync("ip", args, { encoding: "utf8" });

export function localPodRange(prefix = "198.18.42.0/24"): LocalRange | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: "not root: cannot add a local route" };
  const present = ip("route", "show", "table", "local", prefix);
  if (present.error) return { skip: `no ip command: ${present.error.message}` };
  const existed = present.stdout.includes("local");
  if (!existed) {
    const add = ip("route", "add", "local", prefix, "dev", "lo", "table", "local");
    if (add.status !== 0) return { skip: `ip route add local ${prefix}: ${add.stderr.trim()}` };
  }
  const base = prefix.split("/")[0]!.split(".").slice(0, 3).join(".");
  return {
    firstAddress: `${base}.10`,
    // Always removed, even when it was found in place: only these suites add it, so a route
    // left over is from a run that was killed before its own cleanup.
    remove: () => void ip("route", "del", "local", prefix, "dev", "lo", "table", "local"),
  };
}
