/** `kubectl verso dashboard [-n NS | -A] [--port N]`: serve the local dashboard until Ctrl-C. */
import type { Ctx } from "../context.ts";
import { startDashboard } from "../dashboard/server.ts";

export async function dashboard(ctx: Ctx): Promise<number> {
  const kube = ctx.kube();
  const d = await startDashboard({
    kube,
    namespace: ctx.args.allNamespaces ? undefined : kube.namespace,
    port: ctx.args.port,
    intervalMs: ctx.args.intervalMs,
    metrics: ctx.args.metrics,
    log: (line) => ctx.io.stderr.write(`${line}\n`),
  });
  ctx.io.stdout.write(
    `Verso dashboard: ${d.url} (context ${kube.context}, ${
      ctx.args.allNamespaces ? "every namespace" : `namespace ${kube.namespace}`
    }; Ctrl-C stops it)\n`,
  );
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    ctx.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await d.close();
  return 0;
}
