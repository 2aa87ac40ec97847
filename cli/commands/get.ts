/** `kubectl verso get APP [--watch]`: everything about one release. */
import { structured, type Ctx } from "../context.ts";
import { loadView } from "../live.ts";
import { renderRelease } from "../render.ts";
import { watchRelease } from "../watch.ts";

export async function get(ctx: Ctx): Promise<number> {
  const kube = ctx.kube();
  const name = ctx.args.positionals[0]!;
  if (ctx.args.watch) return watchRelease(ctx, kube, kube.namespace, name);
  const { view } = await loadView(kube, kube.namespace, name, {
    metrics: ctx.args.metrics,
    windowMs: ctx.args.intervalMs,
    signal: ctx.signal,
  });
  ctx.io.stdout.write(
    structured(ctx, view) ?? renderRelease(view, { now: ctx.now(), color: ctx.color }) + "\n",
  );
  return 0;
}
