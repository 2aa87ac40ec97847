/**
 * The fast cut-off (`verso.dev/cutoff-failures`, the table's `release.cutoffFailures`): this
 * proxy counts consecutive failures (a 5xx, or no answer at all) of the release version it
 * sends requests to; at N in a row it stops sending that version new requests (decide() routes
 * them to stable), says so on its metrics, and the controller, polling those, rolls back.
 *
 * On the hot path: `record` is a comparison and an increment, O(1), no allocation. The cut
 * holds until the table no longer sends the version anything (weight 0, no rules: the
 * controller has rolled back or restarted the release) or names another release.
 */
import type { Logger } from "../../shared/log.ts";
import type { CompiledTable } from "./compile.ts";

export interface CutOffSink {
  /** The release version was cut off (true) or the cut was lifted (false). */
  cutOff(version: string, on: boolean): void;
}

export class CutOff {
  private version: string | undefined = undefined;
  private limit = 0;
  private streak = 0;
  private cut = false;

  private readonly sink: CutOffSink;

  constructor(sink: CutOffSink) {
    this.sink = sink;
  }

  /** True while new requests must not go to the release. */
  get active(): boolean {
    return this.cut;
  }

  /** A new table: follow its release; lift the cut when the release is off or another one. */
  onTable(table: CompiledTable | undefined): void {
    const r = table?.release;
    const version = r && r.cutoffFailures > 0 ? r.version : undefined;
    const idle = r === undefined || (r.weight <= 0 && r.rules.length === 0);
    if (version !== this.version || idle) {
      if (this.cut && this.version !== undefined) this.sink.cutOff(this.version, false);
      this.cut = false;
      this.streak = 0;
    }
    this.version = version;
    this.limit = r?.cutoffFailures ?? 0;
  }

  /** One answer (or failure to answer) of `version`; `failed`: 5xx or no answer. */
  record(version: string, failed: boolean): void {
    if (version !== this.version) return;
    if (!failed) {
      this.streak = 0;
      return;
    }
    this.streak++;
    if (this.streak >= this.limit && !this.cut) {
      this.cut = true;
      this.sink.cutOff(version, true);
    }
  }
}

/** The proxy's cut-off: reported on its metrics and, when it trips, in its log. */
export function createCutOff(
  metrics: { cutOff(version: string, on: boolean): void },
  log: Logger,
): CutOff {
  return new CutOff({
    cutOff(version, on) {
      metrics.cutOff(version, on);
      if (on) log.warn("release cut off after consecutive failures: stable serves", { version });
    },
  });
}
