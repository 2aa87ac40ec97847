/** `kubectl verso list [-A]`: one row per release. */
import { LABEL } from "../../shared/annotations.ts";
import { structured, type Ctx } from "../context.ts";
import { scrapeApp, sleep } from "../live.ts";
import { groupApps, releaseRow, type App, type AppDeployment } from "../model.ts";
import { renderList } from "../render.ts";
import { trafficBetween, type Scrape, type Traffic } from "../traffic.ts";

type Released = App & { release: AppDeployment };

export async function list(ctx: Ctx): Promise<number> {
  const kube = ctx.kube();
  const namespace = ctx.args.allNamespaces ? undefined : kube.namespace;
  const apps = groupApps(await kube.listDeployments(namespace)).filter(
    (a): a is Released => a.release !== undefined,
  );
  const traffic = new Map<string, Traffic>();
  if (ctx.args.metrics && apps.length > 0) {
    const pods = await kube.listPods(namespace, LABEL.app);
    const key = (a: Released): string => `${a.namespace}/${a.app}`;
    const notes = new Set<string>();
    const scrapeAll = async (): Promise<Map<string, Scrape>> => {
      const out = new Map<string, Scrape>();
      await Promise.all(
        apps.map(async (a) => {
          const own = pods.filter((p) => p.metadata?.namespace === a.namespace);
          const r = await scrapeApp(kube, a.namespace, a.app, own);
          if (r.note) notes.add(r.note);
          out.set(key(a), r.scrape);
        }),
      );
      return out;
    };
    const before = await scrapeAll();
    await sleep(ctx.args.intervalMs, ctx.signal);
    const after = await scrapeAll();
    for (const a of apps) {
      const b = before.get(key(a));
      const n = after.get(key(a));
      if (b && n && n.pods.size > 0) traffic.set(key(a), trafficBetween(b, n, a.release.version));
    }
    // Said once, on stderr: the table itself stays clean for scripts.
    for (const note of notes) ctx.io.stderr.write(`warning: ${note}\n`);
  }
  const rows = apps.map((a) => releaseRow(a, traffic.get(`${a.namespace}/${a.app}`)));
  const text = structured(ctx, { items: rows });
  ctx.io.stdout.write(
    text ??
      renderList(rows, {
        now: ctx.now(),
        color: ctx.color,
        allNamespaces: ctx.args.allNamespaces,
        namespace: kube.namespace,
      }) + "\n",
  );
  return 0;
}
