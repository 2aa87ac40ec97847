/**
 * promote, abort, pause, resume, set-weight, retry, undo: read the app's Deployments, plan the
 * writes (actions.ts, pure), send them as the user. A status edit refused because the
 * Deployment moved meanwhile (the controller wrote) is planned again from a fresh read. The
 * dashboard's buttons call `perform` too.
 */
import { ANNOTATION } from "../../shared/annotations.ts";
import { VersoError } from "../../shared/errors.ts";
import { parseStatus } from "../../webhook/controller/decide/status.ts";
import { planAction, type ActionCommand, type Plan } from "../actions.ts";
import { structured, type Ctx } from "../context.ts";
import type { Kube } from "../kube.ts";
import { sleep } from "../live.ts";
import { findRelease, groupApps, releaseState } from "../model.ts";

const ATTEMPTS = 3;
/** How long the controller gets to react to a status edit before it is checked. */
const SETTLE_MS = 1_000;

export interface PerformInput {
  kube: Kube;
  namespace: string;
  app: string;
  command: ActionCommand;
  full?: boolean;
  weight?: string | undefined;
  now: () => number;
  signal?: AbortSignal;
}

/** Plan and write one command; the plan that was carried out. Throws VersoError. */
export async function perform(input: PerformInput): Promise<Plan> {
  const { kube, namespace } = input;
  for (let attempt = 1; ; attempt++) {
    const app = findRelease(groupApps(await kube.listDeployments(namespace)), namespace, input.app);
    const planned = planAction({
      command: input.command,
      app,
      state: releaseState(app.release),
      full: input.full ?? false,
      weight: input.weight,
      now: input.now(),
    });
    if (!planned.ok) throw planned.error;
    const plan = planned.value;
    try {
      for (const w of plan.writes) {
        await kube.patchDeployment(
          namespace,
          w.deployment,
          {
            ...(w.annotations && { annotations: w.annotations }),
            ...(w.replicas !== undefined && { replicas: w.replicas }),
          },
          w.resourceVersion,
        );
      }
      if (plan.verify && !(await held(input, plan.verify))) {
        if (attempt < ATTEMPTS) continue;
        throw new VersoError(
          "CLI_CONFLICT",
          `the controller overwrote the step ${ATTEMPTS} times; look at "kubectl verso get ${input.app}" and try again`,
        );
      }
      return plan;
    } catch (error) {
      if (error instanceof VersoError && error.code === "CLI_CONFLICT" && attempt < ATTEMPTS)
        continue;
      throw error;
    }
  }
}

export async function act(ctx: Ctx, command: ActionCommand): Promise<number> {
  const kube = ctx.kube();
  const namespace = kube.namespace;
  const name = ctx.args.positionals[0]!;
  const plan = await perform({
    kube,
    namespace,
    app: name,
    command,
    full: ctx.args.full,
    weight: ctx.args.positionals[1],
    now: ctx.now,
    signal: ctx.signal,
  });
  const text = structured(ctx, {
    namespace,
    app: name,
    command,
    summary: plan.summary,
    writes: plan.writes,
  });
  ctx.io.stdout.write(
    text ?? `${plan.summary}${plan.writes.length === 0 ? " (nothing to do)" : ""}\n`,
  );
  return 0;
}

/** The status edit is still there (or the release moved further on its own). */
async function held(
  input: PerformInput,
  verify: { deployment: string; step: number },
): Promise<boolean> {
  await sleep(SETTLE_MS, input.signal);
  const d = await input.kube.getDeployment(input.namespace, verify.deployment);
  const status = parseStatus(d.metadata?.annotations?.[ANNOTATION.status]);
  return (
    status === undefined || status.phase !== "Progressing" || (status.step ?? 0) >= verify.step
  );
}
