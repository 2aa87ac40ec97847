/**
 * What each control command writes: the release's state in, the writes out. Pure. The
 * writes are the annotations a person would write with `kubectl annotate` (docs/controller.md,
 * "Manual control"); the one exception, `promote` by one step, edits `verso.dev/status`
 * guarded by the Deployment's resourceVersion, because no annotation means "next step".
 *
 * | command    | release                               | writes                                             |
 * |------------|---------------------------------------|----------------------------------------------------|
 * | promote    | Failed                                | refused: retry first                               |
 * | promote    | Promoted                              | nothing (already promoted)                         |
 * | promote    | --full, blue-green, or no steps       | verso.dev/promote=true                             |
 * | promote    | steps, not started (Pending/none)     | refused: --full promotes now                       |
 * | promote    | steps, at the last step               | verso.dev/promote=true                             |
 * | promote    | steps, step k < n                     | status: step k+1, its weight (resourceVersion)     |
 * | abort      | abort already set                     | nothing                                            |
 * | abort      | any                                   | verso.dev/abort=true                               |
 * | pause      | not a canary with steps               | refused                                            |
 * | pause      | Promoted or Failed                    | refused: nothing to hold                           |
 * | pause      | paused already                        | nothing                                            |
 * | pause      | otherwise                             | verso.dev/paused=true                              |
 * | resume     | not paused                            | nothing                                            |
 * | resume     | paused                                | verso.dev/paused removed                           |
 * | set-weight | N not a percent                       | refused (POLICY_WEIGHT, the controller's message)  |
 * | set-weight | blue-green, or a canary with steps    | refused                                            |
 * | set-weight | manual canary                         | verso.dev/weight=N                                 |
 * | retry      | not Failed and no abort               | refused: nothing to retry                          |
 * | retry      | Failed or aborted                     | verso.dev/abort, verso.dev/promote and             |
 * |            |                                       | verso.dev/status removed (it starts from Pending)  |
 * | undo       | no other Deployment of the app        | refused: no previous version                       |
 * | undo       | otherwise                             | verso.dev/abort=true; the previous version's       |
 * |            |                                       | replicas = the release's when it was scaled to 0   |
 */
import { ANNOTATION } from "../shared/annotations.ts";
import { err, ok, VersoError, type Result, type VersoErrorCode } from "../shared/errors.ts";
import { parsePolicy } from "../shared/policy.ts";
import { formatStatus, type ReleaseStatus } from "../webhook/controller/decide/status.ts";
import type { App, AppDeployment, ReleaseState } from "./model.ts";

export type ActionCommand =
  "promote" | "abort" | "pause" | "resume" | "set-weight" | "retry" | "undo";

export interface Write {
  deployment: string;
  annotations?: Record<string, string | null>;
  replicas?: number;
  /** Refuse the write if the Deployment changed since it was read (status edits). */
  resourceVersion?: string;
}

export interface Plan {
  writes: Write[];
  /**
   * A status edit to check once the controller has seen it: the leader writes its status
   * without a precondition, so a write it was computing meanwhile can undo ours.
   */
  verify?: { deployment: string; step: number };
  /** One line for the user: what happens now. */
  summary: string;
}

export interface ActionInput {
  command: ActionCommand;
  app: App & { release: AppDeployment };
  state: ReleaseState;
  full?: boolean;
  /** set-weight: the N as typed. */
  weight?: string;
  now: number;
}

const refuse = (code: VersoErrorCode, message: string): Result<Plan, VersoError> =>
  err(new VersoError(code, message));
const nothing = (summary: string): Result<Plan, VersoError> => ok({ writes: [], summary });

export function planAction(input: ActionInput): Result<Plan, VersoError> {
  const { app, state } = input;
  const r = app.release;
  const name = `${app.app} (${r.name})`;
  const annotate = (
    annotations: Record<string, string | null>,
    summary: string,
  ): Result<Plan, VersoError> => ok({ writes: [{ deployment: r.name, annotations }], summary });
  const policy = state.policy;
  const status = state.status;
  const phase = status?.phase;
  const steps = policy?.strategy === "canary" ? policy.steps : undefined;

  switch (input.command) {
    case "promote": {
      if (phase === "Failed" || policy?.abort)
        return refuse(
          "CLI_RELEASE_FAILED",
          `${name} has failed (${status?.reason ?? "aborted"}): run "kubectl verso retry ${app.app}" first`,
        );
      if (phase === "Promoted" || policy?.promote) return nothing(`${name} is already promoted`);
      const full = (summary: string) => annotate({ [ANNOTATION.promote]: "true" }, summary);
      if (input.full || !steps)
        return full(
          policy?.strategy === "blue-green"
            ? `${name}: switching 100% of traffic to ${r.version}`
            : `${name}: promoting ${r.version} to 100% now`,
        );
      const step = status?.step;
      if (!status || phase === "Pending" || step === undefined)
        return refuse(
          "CLI_NOT_STARTED",
          `${name} has not started its first step yet (waiting for its replicas); "kubectl verso promote ${app.app} --full" promotes it now`,
        );
      if (step >= steps.length)
        return full(`${name}: last step (${step} of ${steps.length}); promoting to 100%`);
      const next = step + 1;
      const weight = steps[next - 1] as number;
      const at = new Date(input.now).toISOString();
      const nextStatus: ReleaseStatus = {
        ...status,
        step: next,
        weight,
        reason: "StepAdvanced",
        message: `step ${next} of ${steps.length}: ${weight}% (advanced by hand: kubectl verso promote)`,
        stepStartedAt: at,
        lastProgressAt: at,
      };
      return ok({
        writes: [
          {
            deployment: r.name,
            annotations: { [ANNOTATION.status]: formatStatus(nextStatus) },
            resourceVersion: r.resourceVersion,
          },
        ],
        summary: `${name}: step ${next} of ${steps.length}, ${weight}% of traffic to ${r.version}`,
        verify: { deployment: r.name, step: next },
      });
    }
    case "abort":
      if (policy?.abort) return nothing(`${name} is already aborted`);
      return annotate(
        { [ANNOTATION.abort]: "true" },
        `${name}: aborting; all traffic back to the stable version`,
      );
    case "pause":
      if (!steps)
        return refuse(
          "CLI_UNSUPPORTED",
          `${name} is not an automated canary (no verso.dev/steps): there is nothing to pause`,
        );
      if (phase === "Promoted" || phase === "Failed")
        return refuse("CLI_UNSUPPORTED", `${name} is ${phase}: there is nothing to pause`);
      if (policy?.paused) return nothing(`${name} is already paused`);
      return annotate(
        { [ANNOTATION.paused]: "true" },
        `${name}: paused at step ${status?.step ?? 0} (${state.desiredWeight}%)`,
      );
    case "resume":
      if (!policy?.paused && r.annotations[ANNOTATION.paused] === undefined)
        return nothing(`${name} is not paused`);
      return annotate({ [ANNOTATION.paused]: null }, `${name}: resumed`);
    case "set-weight": {
      const raw = input.weight ?? "";
      const parsed = parsePolicy({ [ANNOTATION.strategy]: "canary", [ANNOTATION.weight]: raw });
      if (!parsed.ok) {
        const problem = parsed.error[0]!;
        return refuse(problem.code, problem.message);
      }
      if (policy?.strategy === "blue-green")
        return refuse(
          "CLI_UNSUPPORTED",
          `${name} is blue-green: it switches all at once ("kubectl verso promote ${app.app}"), it has no weight`,
        );
      if (steps)
        return refuse(
          "CLI_UNSUPPORTED",
          `${name} is an automated canary (steps ${steps.join(",")}): its steps set the weight; use promote, pause or abort, or remove verso.dev/steps to set weights by hand`,
        );
      return annotate(
        { [ANNOTATION.weight]: raw.trim() },
        `${name}: ${parsed.value.weight}% of traffic to ${r.version}`,
      );
    }
    case "retry":
      if (phase !== "Failed" && !policy?.abort)
        return refuse(
          "CLI_NOT_FAILED",
          `${name} has not failed (phase ${phase ?? "none yet"}): there is nothing to retry`,
        );
      return annotate(
        // A promote left from before would promote the new attempt at once.
        { [ANNOTATION.abort]: null, [ANNOTATION.promote]: null, [ANNOTATION.status]: null },
        `${name}: starting the release of ${r.version} over`,
      );
    case "undo": {
      const previous = app.deployments
        .filter((d) => d.name !== r.name && d.version !== r.version)
        .sort((a, b) => b.created - a.created)[0];
      if (!previous)
        return refuse(
          "CLI_NO_PREVIOUS",
          `${name}: no previous version to go back to (the app has no other Deployment)`,
        );
      const writes: Write[] = [];
      if (!policy?.abort)
        writes.push({ deployment: r.name, annotations: { [ANNOTATION.abort]: "true" } });
      if (previous.replicas === 0 && r.replicas > 0)
        writes.unshift({ deployment: previous.name, replicas: r.replicas });
      if (writes.length === 0)
        return nothing(`${name}: already back on ${previous.version} (${previous.name})`);
      return ok({
        writes,
        summary: `${name}: all traffic back to ${previous.version} (${previous.name})${
          previous.replicas === 0 ? `, scaled up to ${r.replicas}` : ""
        }`,
      });
    }
  }
}
