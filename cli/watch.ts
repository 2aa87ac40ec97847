/**
 * `get APP --watch`: the `get` page redrawn every --interval. Live numbers of a frame are the
 * difference between its scrape and the previous frame's, so after the first frame the view
 * costs one scrape per refresh. On a terminal it redraws in place (render.ts `frame`), piped it
 * prints plain frames one after another. Ctrl-C (or --count frames) ends it with exit 0.
 */
import { VersoError } from "../shared/errors.ts";
import type { Ctx } from "./context.ts";
import type { Kube } from "./kube.ts";
import { loadView, sleep } from "./live.ts";
import { frame, paint, renderRelease } from "./render.ts";
import type { Scrape } from "./traffic.ts";

const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";
const CLEAR_SCREEN = "\x1b[2J";

export async function watchRelease(
  ctx: Ctx,
  kube: Kube,
  namespace: string,
  name: string,
): Promise<number> {
  const out = ctx.io.stdout;
  const inPlace = ctx.tty;
  if (inPlace) out.write(HIDE_CURSOR + CLEAR_SCREEN);
  let previous: Scrape | undefined;
  let frames = 0;
  const title = (): string =>
    `Every ${ctx.args.intervalMs / 1000}s: kubectl verso get ${name} -n ${namespace}` +
    `   ${new Date(ctx.now()).toISOString().replace(/\.\d+Z$/, "Z")}`;
  try {
    while (!ctx.signal.aborted) {
      const started = ctx.now();
      let body: string;
      try {
        // The first frame shows at once; its live numbers start with the second.
        const live = await loadView(kube, namespace, name, {
          metrics: ctx.args.metrics,
          windowMs: 0,
          previous: previous ?? emptyScrape(),
          signal: ctx.signal,
        });
        if (previous === undefined && live.view.traffic) {
          delete live.view.traffic;
          delete live.view.actualWeight;
          live.view.trafficNote ??= `measuring: numbers from the next refresh on`;
        }
        previous = live.scrape;
        body = renderRelease(live.view, { now: ctx.now(), color: ctx.color });
      } catch (error) {
        // The first frame's refusal (unknown app, forbidden) is the answer; later ones are
        // shown in place and retried, as a transient API failure should be.
        if (frames === 0 || !(error instanceof VersoError)) throw error;
        body = paint(ctx.color, "red", `error: ${error.message} (retrying)`);
      }
      out.write(frame(body, { inPlace, title: title() }));
      frames++;
      if (ctx.args.count > 0 && frames >= ctx.args.count) break;
      await sleep(Math.max(0, ctx.args.intervalMs - (ctx.now() - started)), ctx.signal);
    }
  } finally {
    if (inPlace) out.write(SHOW_CURSOR);
  }
  return 0;
}

/** The baseline of the first frame: no counters yet. */
const emptyScrape = (): Scrape => ({ at: Date.now(), pods: new Map() });
