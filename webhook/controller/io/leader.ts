/**
 * Leader election on a coordination.k8s.io Lease. Every replica serves route streams; only
 * the leader writes status, Events and scale-downs. `isLeader()` is checked right before each
 * write and turns false the moment the lease could have expired by our own clock (renewal
 * failing for longer than the lease minus a margin), not when the next renewal fails.
 */
import type { Logger } from "../../../shared/log.ts";
import type { KubeApi } from "./kube.ts";

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  durationMs?: number;
  renewMs?: number;
  now?: () => number;
  onChange?: (leader: boolean) => void;
}

export interface Leader {
  isLeader(): boolean;
  /** Stop renewing; a held lease is released (holder cleared) so a peer takes over at once. */
  stop(): Promise<void>;
}

export function startLeaderElection(kube: KubeApi, log: Logger, o: LeaderOptions): Leader {
  const durationMs = o.durationMs ?? 15_000;
  const renewMs = o.renewMs ?? 5_000;
  const now = o.now ?? Date.now;
  // Stop writing a little before the lease could expire for the others.
  const margin = Math.min(2_000, durationMs / 5);
  let validUntil = 0;
  let leading = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let attempting: Promise<void> | undefined;
  // Another holder's lease expires by our clock, counted from when we saw its record change,
  // as client-go does: its renewTime is written by its clock, and a replica whose clock runs
  // behind ours would otherwise look expired while it still leads.
  let observed = { record: "", at: 0 };

  const setLeading = (v: boolean): void => {
    if (v === leading) return;
    leading = v;
    log.info(v ? "became leader" : "lost leadership", {
      lease: `${o.namespace}/${o.name}`,
      identity: o.identity,
    });
    o.onChange?.(v);
  };
  const isLeader = (): boolean => {
    if (leading && now() >= validUntil) setLeading(false);
    return leading;
  };

  async function attempt(): Promise<void> {
    const t = now();
    const current = await kube.readLease(o.namespace, o.name);
    const mine = current?.holder === o.identity;
    const record = current
      ? `${current.holder}|${current.renewTime}|${current.resourceVersion}`
      : "";
    if (record !== observed.record) observed = { record, at: t };
    const expired = !current || !current.holder || observed.at + current.durationSeconds * 1000 < t;
    if (!mine && !expired) {
      setLeading(false);
      return;
    }
    const wrote = await kube.writeLease(o.namespace, o.name, {
      holder: o.identity,
      renewTime: t,
      durationSeconds: Math.ceil(durationMs / 1000),
      transitions: (current?.transitions ?? 0) + (mine ? 0 : 1),
      resourceVersion: current?.resourceVersion,
    });
    if (!wrote) {
      setLeading(false);
      return;
    }
    validUntil = t + durationMs - margin;
    setLeading(true);
  }

  const loop = async (): Promise<void> => {
    if (stopped) return;
    try {
      attempting = attempt();
      await attempting;
    } catch (error) {
      log.warn("lease renewal failed", { error });
      isLeader();
    }
    if (!stopped) timer = setTimeout(loop, leading ? renewMs : Math.min(renewMs, 2_000));
  };
  void loop();

  return {
    isLeader,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      // A renewal in flight may still take the lease: wait for it, so that lease is released too.
      await attempting?.catch(() => undefined);
      const was = isLeader();
      setLeading(false);
      if (!was) return;
      try {
        const current = await kube.readLease(o.namespace, o.name);
        if (current?.holder === o.identity) {
          await kube.writeLease(o.namespace, o.name, {
            ...current,
            holder: "",
            renewTime: 0,
            durationSeconds: 1,
          });
        }
      } catch (error) {
        log.warn("lease release failed", { error });
      }
    },
  };
}
