/**
 * Gate calls (`verso.dev/webhook-<kind>`), made from the controller only (no secret reaches a
 * pod). Never awaited by a reconcile: each call runs on its own and its outcome is handed back
 * through `onResult` (to the inbox, then the machine as a `gate` event), so a slow or dead
 * gate delays nobody, this app's other work included. A gate that cannot be reached, answers
 * non-2xx or does not answer within its timeout has failed.
 */
import type { Logger } from "../../../shared/log.ts";
import type { GateCall, GateResult } from "../decide/machine.ts";
import type { GatePayload } from "../decide/payloads.ts";
import { postJson } from "./postJson.ts";

export interface GateRunner {
  call(c: GateCall, body: GatePayload, onResult: (r: GateResult) => void): void;
  /** Calls still waiting for an answer. */
  inFlight(): number;
}

export function createGateRunner(log: Logger): GateRunner {
  let inFlight = 0;
  return {
    inFlight: () => inFlight,
    call(c, body, onResult) {
      inFlight++;
      void postJson(c.url, body, c.timeoutMs).then((o) => {
        inFlight--;
        const result: GateResult = o.ok
          ? { kind: c.kind, id: c.id, ok: true, code: o.code, message: `HTTP ${o.code}` }
          : { kind: c.kind, id: c.id, ok: false, message: o.message };
        if (!o.ok && o.code !== undefined) result.code = o.code;
        log.info("gate answered", { kind: c.kind, url: c.url, ok: result.ok, code: result.code });
        onResult(result);
      });
    },
  };
}
