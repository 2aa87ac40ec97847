/** Where the analysis gets its numbers from: the proxies themselves, or Prometheus. */
import type { Measurements } from "../../decide/analyse.ts";

export interface Target {
  namespace: string;
  app: string;
  releaseVersion: string;
  /** Admin addresses (`podIP:15020`) of the app's ready injected pods. */
  admins: string[];
  intervalMs: number;
}

export interface MetricsSource {
  readonly name: "builtin" | "prometheus";
  /** A step's interval starts now (the built-in source takes its baseline). */
  begin(target: Target): Promise<void>;
  /** The interval's numbers, or undefined when there is no baseline to compare against yet. */
  measure(target: Target): Promise<Measurements | undefined>;
}
