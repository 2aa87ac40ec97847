/**
 * The routing table in force, compiled, plus the hop key that goes with it. Sources (the
 * routes file, the controller stream) call apply(); the proxy reads `current` per request.
 */
import type { RoutingTable } from "../../shared/table.ts";
import type { Logger } from "../../shared/log.ts";
import { compileTable, type CompiledTable } from "../routing/compile.ts";
import { derivedHopKey, HopKeys } from "../routing/hop.ts";

export type ApplyResult =
  { applied: true } | { applied: false; reason: "stale-revision" | "wrong-app" | "bad-hop-key" };

export interface StoreOptions {
  app: string;
  version: string;
  /** From --hop-key-file: wins over the table's key. */
  fileKey: Buffer | undefined;
  /** File mode only: without any key, derive one from the app name (and say so). */
  allowDerivedKey: boolean;
  log: Logger;
  onChange?: (table: CompiledTable) => void;
}

export class TableStore {
  current: CompiledTable | undefined;
  /** The same table for gRPC calls: its peers are the table's `grpcEndpoints`. */
  grpc: CompiledTable | undefined;
  readonly hop: HopKeys;
  private readonly opts: StoreOptions;
  private warnedDerived = false;

  constructor(opts: StoreOptions) {
    this.opts = opts;
    this.hop = new HopKeys(opts.app, opts.version);
    if (opts.fileKey) this.hop.setKey(opts.fileKey);
  }

  get loaded(): boolean {
    return this.current !== undefined;
  }

  /**
   * `enforceRevision`: the stream ignores a table older than the one in force (a reconnect to a
   * lagging controller replica); the file is the operator's truth and wins as written.
   */
  apply(table: RoutingTable, enforceRevision: boolean): ApplyResult {
    if (table.app !== this.opts.app) return { applied: false, reason: "wrong-app" };
    const prev = this.current;
    if (enforceRevision && prev && table.revision < prev.revision && prev.app === table.app) {
      return { applied: false, reason: "stale-revision" };
    }
    if (!this.opts.fileKey) {
      if (table.hopKey !== undefined) {
        const key = Buffer.from(table.hopKey, "base64");
        if (key.length < 16) return { applied: false, reason: "bad-hop-key" };
        this.hop.setKey(key);
      } else if (this.opts.allowDerivedKey) {
        if (!this.warnedDerived) {
          this.warnedDerived = true;
          this.opts.log.warn(
            "no hop key (no --hop-key-file, no hopKey in the table): using a key derived from the app name; anyone who knows it can bypass the split. Set --hop-key-file or the table's hopKey",
            { app: this.opts.app },
          );
        }
        this.hop.setKey(derivedHopKey(this.opts.app));
      }
    }
    const compiled = compileTable(table);
    this.current = compiled;
    this.grpc = compileTable({ ...table, endpoints: table.grpcEndpoints ?? {} });
    this.opts.onChange?.(compiled);
    return { applied: true };
  }
}
