/**
 * Built-in metrics: scrape every ready injected pod's admin `/metrics` (podIP:15020) at the
 * start and at the end of each interval and take the difference. No extra infrastructure;
 * the baseline lives in the leader's memory, so a new leader measures from its first scrape.
 */
import { request } from "undici";
import type { Logger } from "../../../../shared/log.ts";
import type { Measurements } from "../../decide/analyse.ts";
import {
  deltaCounts,
  parseCounts,
  toStats,
  addCounts,
  type CountsByVersion,
} from "../../decide/counts.ts";
import type { MetricsSource, Target } from "./source.ts";

type Snapshot = Map<string, CountsByVersion>;

export function createBuiltinSource(log: Logger, timeoutMs = 2_000): MetricsSource {
  const baselines = new Map<string, Snapshot>();
  const key = (t: Target): string => `${t.namespace}/${t.app}`;

  async function scrape(t: Target): Promise<Snapshot> {
    const snap: Snapshot = new Map();
    await Promise.all(
      t.admins.map(async (addr) => {
        try {
          const res = await request(`http://${addr}/metrics`, {
            headersTimeout: timeoutMs,
            bodyTimeout: timeoutMs,
          });
          const text = await res.body.text();
          if (res.statusCode === 200) snap.set(addr, parseCounts(text, t.app));
        } catch (error) {
          // A pod that cannot be scraped contributes nothing this interval.
          log.debug("scrape failed", { addr, error });
        }
      }),
    );
    return snap;
  }

  return {
    name: "builtin",
    async begin(t) {
      baselines.set(key(t), await scrape(t));
    },
    async measure(t): Promise<Measurements | undefined> {
      const before = baselines.get(key(t));
      const now = await scrape(t);
      baselines.set(key(t), now);
      if (!before) return undefined;
      const total: CountsByVersion = new Map();
      for (const [addr, counts] of now) addCounts(total, deltaCounts(counts, before.get(addr)));
      return toStats(total, t.releaseVersion);
    },
  };
}
