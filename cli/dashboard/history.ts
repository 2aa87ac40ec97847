/**
 * What the dashboard's charts draw: one sample per refresh of a release, kept for the last
 * `limit` refreshes. Pure.
 */
import type { ReleaseView } from "../model.ts";

export interface VersionSample {
  rps: number;
  errorRate?: number;
  p99Ms?: number;
}

export interface Sample {
  at: number;
  phase: string;
  desiredWeight: number;
  actualWeight?: number;
  /** Absent when the refresh had no live numbers (the first one, or none readable). */
  versions?: Record<string, VersionSample>;
}

export function sampleOf(view: ReleaseView, at: number): Sample {
  const s: Sample = { at, phase: view.phase, desiredWeight: view.desiredWeight };
  if (view.actualWeight !== undefined) s.actualWeight = view.actualWeight;
  if (view.traffic) {
    s.versions = {};
    for (const v of view.traffic.versions) {
      const vs: VersionSample = { rps: v.rps };
      if (v.errorRate !== undefined) vs.errorRate = v.errorRate;
      if (v.p99Ms !== undefined) vs.p99Ms = v.p99Ms;
      s.versions[v.version] = vs;
    }
  }
  return s;
}

/** A new history with `sample` appended and at most `limit` kept (oldest dropped). */
export function appendSample(history: readonly Sample[], sample: Sample, limit: number): Sample[] {
  const next = [...history, sample];
  return next.length > limit ? next.slice(next.length - limit) : next;
}
