/**
 * Notifications: the generic JSON (`--notify-url`, `verso.dev/notify-url`) and Slack's
 * incoming-webhook payload (`--notify-slack-url`). Sent in the background, retried with a
 * doubling backoff; an endpoint that still fails is reported through `onFailure` (a Warning
 * Event), never thrown: the release loop does not wait for, nor depend on, a receiver.
 */
import type { Logger } from "../../../shared/log.ts";
import { slackPayload, type Notification } from "../decide/payloads.ts";
import type { Clock } from "./clock.ts";
import { postJson } from "./postJson.ts";

export interface NotifierOptions {
  log: Logger;
  clock: Clock;
  /** Generic JSON receivers for every release. */
  urls: readonly string[];
  slackUrl?: string;
  /** Attempts per notification and endpoint (default 4: after 1, 2 and 4 s). */
  attempts?: number;
  firstBackoffMs?: number;
  timeoutMs?: number;
}

export interface Notifier {
  /** `extraUrl`: the release's own `verso.dev/notify-url`. */
  send(n: Notification, extraUrl: string | undefined, onFailure: (message: string) => void): void;
}

export function createNotifier(o: NotifierOptions): Notifier {
  const attempts = o.attempts ?? 4;
  const first = o.firstBackoffMs ?? 1_000;
  const timeoutMs = o.timeoutMs ?? 5_000;

  function deliver(url: string, body: unknown, tryNo: number, fail: (m: string) => void): void {
    void postJson(url, body, timeoutMs).then((out) => {
      if (out.ok) return;
      if (tryNo + 1 < attempts) {
        o.clock.setTimeout(() => deliver(url, body, tryNo + 1, fail), first * 2 ** tryNo);
        return;
      }
      o.log.warn("notification failed", { url, attempts, error: out.message });
      fail(`notification to ${url} failed after ${attempts} attempts: ${out.message}`);
    });
  }

  return {
    send(n, extraUrl, onFailure) {
      const generic = new Set(o.urls);
      if (extraUrl !== undefined) generic.add(extraUrl);
      for (const url of generic) deliver(url, n, 0, onFailure);
      if (o.slackUrl !== undefined) deliver(o.slackUrl, slackPayload(n), 0, onFailure);
    },
  };
}
