/**
 * Release policy: the `verso.dev/*` annotations of a release Deployment, parsed and validated
 * once (docs/controller.md, "Release policy"; docs/design.md). Pure: annotations in, a policy or every problem out.
 * Each problem carries a stable code (tests, Events and status key on it) and a message that
 * says what to write instead.
 */
import { ANNOTATION, GATE_KINDS, webhookAnnotation, type GateKind } from "./annotations.ts";
import { parseDuration } from "./duration.ts";
import { err, ok, type Result } from "./errors.ts";
import type { MatchRule, StickyKey, Strategy } from "./table.ts";

export type PolicyErrorCode =
  | "POLICY_STRATEGY"
  | "POLICY_WEIGHT"
  | "POLICY_BOOL"
  | "POLICY_MATCH"
  | "POLICY_MATCH_WEIGHT"
  | "POLICY_REGEX"
  | "POLICY_STICKY"
  | "POLICY_STEPS"
  | "POLICY_DURATION"
  | "POLICY_ERROR_RATE"
  | "POLICY_P99_RATIO"
  | "POLICY_MIN_REQUESTS"
  | "POLICY_PERCENT"
  | "POLICY_NUMBER"
  | "POLICY_URL"
  /** `verso.dev/gates-configmap`: a bad name, no such ConfigMap, or a key it may not hold. */
  | "POLICY_CONFIGMAP"
  | "POLICY_CHOICE";

export interface PolicyError {
  code: PolicyErrorCode;
  /** The annotation at fault, e.g. `verso.dev/weight`. */
  annotation: string;
  message: string;
}

export interface Gates {
  /** Max 5xx rate of the release over an interval, in percent (0-100). */
  maxErrorRate?: number;
  /** Max p99 latency of the release, milliseconds. */
  maxP99Ms?: number;
  /** Max release p99 / stable p99. */
  maxP99Ratio?: number;
  /** Minimum requests the release must serve in an interval before it is judged. */
  minRequests: number;
  /**
   * Warn (Event + notification, no rollback) when the release's error rate exceeds stable's
   * by more than this relative margin, percent (10: 10 % above stable's rate).
   */
  warnMarginPct: number;
  /**
   * Judge the error-rate gate with a one-sided exact binomial test at this confidence (percent,
   * e.g. 95): fail only when the release's true error rate is above the limit with that
   * confidence. Absent: the observed rate is compared with the limit as it is.
   */
  confidencePct?: number;
}

/** What an inconclusive analysis (too few requests) leads to once `limit` in a row were seen. */
export type InconclusivePolicy = "hold" | "promote" | "fail";

export interface ReleasePolicy {
  strategy: Strategy;
  /** Canary weight set by hand (`verso.dev/weight`), percent; 0 when absent. */
  weight: number;
  /** `verso.dev/promote: "true"`: blue-green switch, or "promote now" for a canary. */
  promote: boolean;
  match?: PolicyMatchRule[];
  sticky?: StickyKey;
  /** Automated canary weights in percent, strictly increasing; absent = manual weight. */
  steps?: number[];
  intervalMs: number;
  gates: Gates;
  progressDeadlineMs: number;
  paused: boolean;
  abort: boolean;
  /** `verso.dev/max-weight`: no step or hand-set weight sends the release more than this. */
  maxWeight?: number;
  /**
   * `verso.dev/pod-share-factor`: the release's weight stays within this factor of its share of
   * the app's ready pods (1 ready pod of 10 with factor 2: at most 20 %).
   */
  podShareFactor?: number;
  /** Consecutive inconclusive intervals before `onInconclusive` applies; absent: never. */
  inconclusiveLimit?: number;
  onInconclusive: InconclusivePolicy;
  /** Consecutive failures after which every proxy cuts the release off; 0 disables. */
  cutoffFailures: number;
  /** Blue-green: preview, smoke test, switch and post-switch analysis without a human. */
  autoPromote: boolean;
  /** Blue-green: how long the release is analysed after the switch (default interval x 3). */
  postSwitchWindowMs: number;
  /**
   * Blue-green with `autoPromote`: analysis intervals of the preview's matched traffic that
   * must pass before the confirm-promotion gate and the switch (`verso.dev/preview-analysis`);
   * absent (or 0): no preview analysis.
   */
  previewAnalysis?: number;
  /** Per-release `--scale-down-delay`; absent: the controller's flag. */
  scaleDownDelayMs?: number;
  /** Gate URLs by kind (`verso.dev/webhook-<kind>`). */
  webhooks: Partial<Record<GateKind, string>>;
  webhookTimeoutMs: number;
  /** Per-release notification URL (generic JSON), in addition to the controller's. */
  notifyUrl?: string;
}

/**
 * A rule as written in `verso.dev/match`. `followsSteps` (`@steps`): the rule's weight is the
 * release's weight of the moment (it moves with `verso.dev/steps`); otherwise `weight` is fixed
 * (absent: 100).
 */
export type PolicyMatchRule = MatchRule & { followsSteps?: true };

export const DEFAULT_INTERVAL_MS = 60_000;
export const DEFAULT_PROGRESS_DEADLINE_MS = 10 * 60_000;
export const DEFAULT_CUTOFF_FAILURES = 5;
export const DEFAULT_WARN_MARGIN_PCT = 10;
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** Blue-green post-switch window when not set: this many intervals. */
export const POST_SWITCH_INTERVALS = 3;

/** The annotations that make up a policy; a change to any of them is a policy change. */
export const POLICY_ANNOTATIONS = [
  ANNOTATION.strategy,
  ANNOTATION.weight,
  ANNOTATION.promote,
  ANNOTATION.match,
  ANNOTATION.sticky,
  ANNOTATION.steps,
  ANNOTATION.interval,
  ANNOTATION.maxErrorRate,
  ANNOTATION.maxP99,
  ANNOTATION.maxP99Ratio,
  ANNOTATION.minRequests,
  ANNOTATION.progressDeadline,
  ANNOTATION.paused,
  ANNOTATION.abort,
  ANNOTATION.maxWeight,
  ANNOTATION.podShareFactor,
  ANNOTATION.warnMargin,
  ANNOTATION.confidence,
  ANNOTATION.inconclusiveLimit,
  ANNOTATION.onInconclusive,
  ANNOTATION.cutoffFailures,
  ANNOTATION.autoPromote,
  ANNOTATION.postSwitchWindow,
  ANNOTATION.previewAnalysis,
  ANNOTATION.scaleDownDelay,
  ANNOTATION.webhookTimeout,
  ANNOTATION.gatesConfigMap,
  ANNOTATION.notifyUrl,
  ...GATE_KINDS.map(webhookAnnotation),
] as const;

type Annotations = Readonly<Record<string, string | undefined>>;

/** A Deployment is a release when it says which strategy to release it with. */
export function isRelease(annotations: Annotations | undefined): boolean {
  return annotations?.[ANNOTATION.strategy] !== undefined;
}

/** Only the policy annotations, for storing the last good set. */
export function pickPolicyAnnotations(annotations: Annotations): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of POLICY_ANNOTATIONS) {
    const v = annotations[key];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

const NUMBER = /^\d+(?:\.\d+)?$/;
const problem = (code: PolicyErrorCode, annotation: string, message: string): PolicyError => ({
  code,
  annotation,
  message: `${annotation}: ${message}`,
});

function parsePercent(raw: string, allowSign: boolean): number | undefined {
  const text = raw.trim();
  const body = allowSign && text.endsWith("%") ? text.slice(0, -1).trim() : text;
  if (!NUMBER.test(body)) return undefined;
  const n = Number(body);
  return n >= 0 && n <= 100 ? n : undefined;
}

function parseBool(raw: string | undefined, key: string, errors: PolicyError[]): boolean {
  if (raw === undefined) return false;
  const v = raw.trim().toLowerCase();
  if (v === "true") return true;
  if (v === "false" || v === "") return false;
  errors.push(problem("POLICY_BOOL", key, `${JSON.stringify(raw)} is not "true" or "false"`));
  return false;
}

function parseRegex(source: string, key: string, errors: PolicyError[]): boolean {
  try {
    new RegExp(source);
    return true;
  } catch (cause) {
    errors.push(
      problem("POLICY_REGEX", key, `bad regex ${JSON.stringify(source)}: ${String(cause)}`),
    );
    return false;
  }
}

/**
 * A rule's weight suffix: `@20`, `@2.5`, `@20%` or `@steps`, at the very end of an item. A `@`
 * preceded by a backslash is part of a regex (`header:x~^a\@20$`); a value that itself ends
 * in `@<number>` is written as a regex.
 */
const WEIGHT_SUFFIX = /(?<!\\)@\s*(steps|[\d.]+%?)\s*$/;

type RuleWeight = { weight?: number; followsSteps?: true };

function splitWeight(
  item: string,
  errors: PolicyError[],
): { text: string; weight: RuleWeight } | undefined {
  const m = WEIGHT_SUFFIX.exec(item);
  if (!m) return { text: item, weight: {} };
  const text = item.slice(0, m.index).trim();
  const raw = m[1] as string;
  if (raw === "steps") return { text, weight: { followsSteps: true } };
  const n = parsePercent(raw, true);
  if (n === undefined) {
    errors.push(
      problem(
        "POLICY_MATCH_WEIGHT",
        ANNOTATION.match,
        `weight ${JSON.stringify(raw)} in ${JSON.stringify(item)}: use @ and a percentage from 0 to 100 (e.g. @20 or @2.5), or @steps`,
      ),
    );
    return undefined;
  }
  return { text, weight: n === 100 ? {} : { weight: n } };
}

/**
 * `header:x-user-type=internal, header:x-region=beijing@20, cookie:beta=1, header:x-env~^qa-,
 * path:/api/beta@steps`. Items are split only at a comma followed by a rule kind, so a regex
 * may hold `{1,3}`. Each item may end in a weight suffix (splitWeight).
 */
export function parseMatch(raw: string, errors: PolicyError[]): PolicyMatchRule[] {
  const key = ANNOTATION.match;
  const rules: PolicyMatchRule[] = [];
  const items = raw.split(/,\s*(?=(?:header|cookie|path):)/);
  for (const itemRaw of items) {
    const split = splitWeight(itemRaw.trim(), errors);
    if (!split) continue;
    const { text: item, weight } = split;
    if (item === "") continue;
    const path = /^path:(.*)$/.exec(item);
    if (path) {
      const prefix = (path[1] ?? "").trim();
      if (!prefix.startsWith("/")) {
        errors.push(
          problem("POLICY_MATCH", key, `path prefix ${JSON.stringify(prefix)} must start with "/"`),
        );
      } else rules.push({ pathPrefix: prefix, ...weight });
      continue;
    }
    const m = /^(header|cookie):([^=~\s]+)\s*([=~])(.*)$/.exec(item);
    if (!m) {
      errors.push(
        problem(
          "POLICY_MATCH",
          key,
          `cannot read ${JSON.stringify(item)}: use header:NAME=VALUE, header:NAME~REGEX, cookie:NAME=VALUE or path:/PREFIX, each optionally followed by @WEIGHT`,
        ),
      );
      continue;
    }
    const [, kind, nameRaw, op, valueRaw] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
    const name = kind === "header" ? nameRaw.toLowerCase() : nameRaw;
    const value = valueRaw.trim();
    if (op === "~") {
      if (!parseRegex(value, key, errors)) continue;
      rules.push(
        kind === "header"
          ? { header: name, regex: value, ...weight }
          : { cookie: name, regex: value, ...weight },
      );
    } else {
      rules.push(
        kind === "header" ? { header: name, value, ...weight } : { cookie: name, value, ...weight },
      );
    }
  }
  if (rules.length === 0 && errors.every((e) => e.annotation !== key)) {
    errors.push(problem("POLICY_MATCH", key, "no rules given"));
  }
  return rules;
}

/** A rule as one writes it in `verso.dev/match`, without its weight (status, logs). */
export function formatRule(rule: MatchRule): string {
  if ("pathPrefix" in rule) return `path:${rule.pathPrefix}`;
  const [kind, name] = "header" in rule ? ["header", rule.header] : ["cookie", rule.cookie];
  return "regex" in rule ? `${kind}:${name}~${rule.regex}` : `${kind}:${name}=${rule.value}`;
}

function parseSticky(raw: string, errors: PolicyError[]): StickyKey | undefined {
  const m = /^(header|cookie):([^\s=~]+)$/.exec(raw.trim());
  if (!m) {
    errors.push(
      problem(
        "POLICY_STICKY",
        ANNOTATION.sticky,
        `${JSON.stringify(raw)}: use header:NAME or cookie:NAME`,
      ),
    );
    return undefined;
  }
  const name = m[2] as string;
  return m[1] === "header" ? { header: name.toLowerCase() } : { cookie: name };
}

function parseSteps(raw: string, errors: PolicyError[]): number[] | undefined {
  const parts = raw.split(",").map((s) => s.trim());
  const steps = parts.map((p) => parsePercent(p, true));
  const bad = steps.findIndex(
    (s, i) => s === undefined || s === 0 || (i > 0 && s <= (steps[i - 1] ?? 0)),
  );
  if (parts.length === 0 || bad !== -1) {
    errors.push(
      problem(
        "POLICY_STEPS",
        ANNOTATION.steps,
        `${JSON.stringify(raw)}: use strictly increasing percentages above 0 and at most 100, e.g. "5,20,50,100"`,
      ),
    );
    return undefined;
  }
  return steps as number[];
}

function parseMs(
  raw: string | undefined,
  key: string,
  fallback: number | undefined,
  errors: PolicyError[],
): number | undefined {
  if (raw === undefined) return fallback;
  const d = parseDuration(raw);
  if (!d.ok || d.value <= 0) {
    errors.push(problem("POLICY_DURATION", key, d.ok ? "must be above 0" : d.error));
    return fallback;
  }
  return d.value;
}

/** Annotations of a Deployment -> its release policy, or every problem found. */
export function parsePolicy(annotations: Annotations): Result<ReleasePolicy, PolicyError[]> {
  const errors: PolicyError[] = [];
  const a = (key: string): string | undefined => annotations[key];

  const strategyRaw = a(ANNOTATION.strategy)?.trim();
  let strategy: Strategy = "canary";
  if (strategyRaw === "canary" || strategyRaw === "blue-green") strategy = strategyRaw;
  else {
    errors.push(
      problem(
        "POLICY_STRATEGY",
        ANNOTATION.strategy,
        `unsupported ${JSON.stringify(strategyRaw ?? "")}, use "canary" or "blue-green"`,
      ),
    );
  }

  // A numeric annotation: absent -> undefined; unreadable -> a problem saying what to write.
  const number = (
    key: string,
    code: PolicyErrorCode,
    read: (text: string) => number | undefined,
    hint: string,
  ): number | undefined => {
    const raw = a(key);
    if (raw === undefined) return undefined;
    const n = read(raw);
    if (n === undefined) errors.push(problem(code, key, `${JSON.stringify(raw)}: ${hint}`));
    return n;
  };

  const weight = number(
    ANNOTATION.weight,
    "POLICY_WEIGHT",
    (t) => parsePercent(t, false),
    'use a number from 0 to 100, e.g. "10" or "2.5"',
  );

  const policy: ReleasePolicy = {
    strategy,
    weight: weight ?? 0,
    promote: parseBool(a(ANNOTATION.promote), ANNOTATION.promote, errors),
    intervalMs: parseMs(
      a(ANNOTATION.interval),
      ANNOTATION.interval,
      DEFAULT_INTERVAL_MS,
      errors,
    ) as number,
    gates: { minRequests: 0, warnMarginPct: DEFAULT_WARN_MARGIN_PCT },
    progressDeadlineMs: parseMs(
      a(ANNOTATION.progressDeadline),
      ANNOTATION.progressDeadline,
      DEFAULT_PROGRESS_DEADLINE_MS,
      errors,
    ) as number,
    paused: parseBool(a(ANNOTATION.paused), ANNOTATION.paused, errors),
    abort: parseBool(a(ANNOTATION.abort), ANNOTATION.abort, errors),
    onInconclusive: "hold",
    cutoffFailures: DEFAULT_CUTOFF_FAILURES,
    autoPromote: parseBool(a(ANNOTATION.autoPromote), ANNOTATION.autoPromote, errors),
    postSwitchWindowMs: 0,
    webhooks: {},
    webhookTimeoutMs: DEFAULT_WEBHOOK_TIMEOUT_MS,
  };

  const matchRaw = a(ANNOTATION.match);
  if (matchRaw !== undefined) policy.match = parseMatch(matchRaw, errors);
  const stickyRaw = a(ANNOTATION.sticky);
  if (stickyRaw !== undefined) {
    const sticky = parseSticky(stickyRaw, errors);
    if (sticky) policy.sticky = sticky;
  }
  const stepsRaw = a(ANNOTATION.steps);
  if (stepsRaw !== undefined) {
    const steps = parseSteps(stepsRaw, errors);
    if (steps) policy.steps = steps;
  }

  const maxErrorRate = number(
    ANNOTATION.maxErrorRate,
    "POLICY_ERROR_RATE",
    (t) => parsePercent(t, true),
    'use a percentage from 0 to 100, e.g. "1" or "1%"',
  );
  if (maxErrorRate !== undefined) policy.gates.maxErrorRate = maxErrorRate;
  const p99 = parseMs(a(ANNOTATION.maxP99), ANNOTATION.maxP99, undefined, errors);
  if (p99 !== undefined) policy.gates.maxP99Ms = p99;
  const maxP99Ratio = number(
    ANNOTATION.maxP99Ratio,
    "POLICY_P99_RATIO",
    (t) => (NUMBER.test(t.trim()) && Number(t) > 0 ? Number(t) : undefined),
    'use a number above 0, e.g. "1.2"',
  );
  if (maxP99Ratio !== undefined) policy.gates.maxP99Ratio = maxP99Ratio;
  const minRequests = number(
    ANNOTATION.minRequests,
    "POLICY_MIN_REQUESTS",
    (t) => (/^\d+$/.test(t.trim()) ? Number(t) : undefined),
    'use a whole number, e.g. "100"',
  );
  if (minRequests !== undefined) policy.gates.minRequests = minRequests;
  parseReleaseEngine(a, policy, number, errors);

  return errors.length > 0 ? err(errors) : ok(policy);
}

type NumberReader = (
  key: string,
  code: PolicyErrorCode,
  read: (text: string) => number | undefined,
  hint: string,
) => number | undefined;

const WHOLE = (t: string): number | undefined => (/^\d+$/.test(t.trim()) ? Number(t) : undefined);
const POSITIVE = (t: string): number | undefined =>
  NUMBER.test(t.trim()) && Number(t) > 0 ? Number(t) : undefined;

function parseUrl(raw: string, key: string, errors: PolicyError[]): string | undefined {
  try {
    const url = new URL(raw.trim());
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
  } catch {
    // reported below
  }
  errors.push(problem("POLICY_URL", key, `${JSON.stringify(raw)}: use an http:// or https:// URL`));
  return undefined;
}

/**
 * The release engine's annotations (capacity guard, levels, low traffic, cut-off,
 * blue-green automation, gates, notifications), parsed into `policy`.
 */
function parseReleaseEngine(
  a: (key: string) => string | undefined,
  policy: ReleasePolicy,
  number: NumberReader,
  errors: PolicyError[],
): void {
  const percent = (t: string): number | undefined => parsePercent(t, true);
  const pctHint = 'use a percentage from 0 to 100, e.g. "50" or "50%"';
  const maxWeight = number(ANNOTATION.maxWeight, "POLICY_PERCENT", percent, pctHint);
  if (maxWeight !== undefined) policy.maxWeight = maxWeight;
  const factorHint = 'use a number above 0, e.g. "2"';
  const factor = number(ANNOTATION.podShareFactor, "POLICY_NUMBER", POSITIVE, factorHint);
  if (factor !== undefined) policy.podShareFactor = factor;
  const margin = number(
    ANNOTATION.warnMargin,
    "POLICY_PERCENT",
    (t) => {
      const body = t.trim().replace(/%$/, "");
      return NUMBER.test(body) ? Number(body) : undefined;
    },
    'use a relative margin in percent, e.g. "10%"',
  );
  if (margin !== undefined) policy.gates.warnMarginPct = margin;
  const confidence = number(
    ANNOTATION.confidence,
    "POLICY_PERCENT",
    (t) => {
      const n = percent(t);
      return n !== undefined && n > 0 && n < 100 ? n : undefined;
    },
    'use a confidence above 0 and below 100 percent, e.g. "95"',
  );
  if (confidence !== undefined) policy.gates.confidencePct = confidence;
  const limit = number(
    ANNOTATION.inconclusiveLimit,
    "POLICY_NUMBER",
    (t) => {
      const n = WHOLE(t);
      return n !== undefined && n > 0 ? n : undefined;
    },
    'use a whole number above 0, e.g. "3"',
  );
  if (limit !== undefined) policy.inconclusiveLimit = limit;
  const on = a(ANNOTATION.onInconclusive)?.trim();
  if (on === "hold" || on === "promote" || on === "fail") policy.onInconclusive = on;
  else if (on !== undefined) {
    errors.push(
      problem(
        "POLICY_CHOICE",
        ANNOTATION.onInconclusive,
        `${JSON.stringify(on)}: use "hold", "promote" or "fail"`,
      ),
    );
  }
  const cutoff = number(
    ANNOTATION.cutoffFailures,
    "POLICY_NUMBER",
    WHOLE,
    'use a whole number, "0" disables',
  );
  if (cutoff !== undefined) policy.cutoffFailures = cutoff;
  policy.postSwitchWindowMs =
    parseMs(a(ANNOTATION.postSwitchWindow), ANNOTATION.postSwitchWindow, undefined, errors) ??
    policy.intervalMs * POST_SWITCH_INTERVALS;
  const preview = number(
    ANNOTATION.previewAnalysis,
    "POLICY_NUMBER",
    WHOLE,
    'use a whole number of analysis intervals, e.g. "3"; "0" disables',
  );
  if (preview !== undefined && preview > 0) policy.previewAnalysis = preview;
  const scaleDownRaw = a(ANNOTATION.scaleDownDelay);
  if (scaleDownRaw !== undefined) {
    const d = parseDuration(scaleDownRaw);
    if (d.ok) policy.scaleDownDelayMs = d.value;
    else errors.push(problem("POLICY_DURATION", ANNOTATION.scaleDownDelay, d.error));
  }
  policy.webhookTimeoutMs =
    parseMs(a(ANNOTATION.webhookTimeout), ANNOTATION.webhookTimeout, undefined, errors) ??
    DEFAULT_WEBHOOK_TIMEOUT_MS;
  for (const kind of GATE_KINDS) {
    const raw = a(webhookAnnotation(kind));
    if (raw === undefined) continue;
    const url = parseUrl(raw, webhookAnnotation(kind), errors);
    if (url !== undefined) policy.webhooks[kind] = url;
  }
  const notify = a(ANNOTATION.notifyUrl);
  if (notify !== undefined) {
    const url = parseUrl(notify, ANNOTATION.notifyUrl, errors);
    if (url !== undefined) policy.notifyUrl = url;
  }
}

/** The data of a ConfigMap by name (the Deployment's namespace); undefined: there is none. */
export type ConfigMapLookup = (name: string) => Readonly<Record<string, string>> | undefined;

/** `verso.dev/gates-configmap`'s ConfigMap: besides the gate kinds, this key sets the timeout. */
export const GATES_CONFIGMAP_TIMEOUT_KEY = "timeout";

/** A ConfigMap name: a DNS subdomain (lowercase alphanumerics, `-` and `.`, at most 253). */
const CONFIGMAP_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * A Deployment's annotations with the gates of the ConfigMap it names in
 * `verso.dev/gates-configmap` folded in, as the annotations they stand for: data key
 * `pre-rollout` (any gate kind) -> `verso.dev/webhook-pre-rollout`, `timeout` ->
 * `verso.dev/webhook-timeout`. An annotation on the Deployment wins over the ConfigMap for the
 * same kind. Pure: the ConfigMap's data comes from `lookup`. Every entry is checked (a gate
 * URL http(s) only, the timeout a duration, no other key), even one an annotation overrides;
 * on any problem the annotations come back as they were (no ConfigMap gate), with the problems.
 * No `verso.dev/gates-configmap`: the annotations as they were, no problem.
 */
export function withGatesConfigMap(
  annotations: Annotations,
  lookup: ConfigMapLookup,
): { annotations: Record<string, string>; errors: PolicyError[] } {
  const own: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations)) if (v !== undefined) own[k] = v;
  const raw = own[ANNOTATION.gatesConfigMap];
  if (raw === undefined) return { annotations: own, errors: [] };
  const key = ANNOTATION.gatesConfigMap;
  const name = raw.trim();
  const fail = (message: string) => ({
    annotations: own,
    errors: [problem("POLICY_CONFIGMAP", key, message)],
  });
  if (!CONFIGMAP_NAME.test(name)) {
    return fail(
      `${JSON.stringify(raw)} is not a ConfigMap name: use lowercase letters, digits, "-" and "." (e.g. "shop-gates")`,
    );
  }
  const data = lookup(name);
  if (data === undefined) {
    return fail(
      `ConfigMap ${JSON.stringify(name)} not found in the Deployment's namespace; create it or remove the annotation`,
    );
  }
  const errors: PolicyError[] = [];
  const merged: Record<string, string> = {};
  const where = `ConfigMap ${JSON.stringify(name)} key`;
  const allowed = [...GATE_KINDS, GATES_CONFIGMAP_TIMEOUT_KEY].join(", ");
  for (const [k, value] of Object.entries(data).sort(([a], [b]) => a.localeCompare(b))) {
    if (k === GATES_CONFIGMAP_TIMEOUT_KEY) {
      const d = parseDuration(value);
      if (!d.ok || d.value <= 0) {
        const why = d.ok ? "must be above 0" : d.error;
        errors.push(problem("POLICY_DURATION", key, `${where} ${k}: ${why}`));
      } else merged[ANNOTATION.webhookTimeout] = value;
      continue;
    }
    const kind = GATE_KINDS.find((g) => g === k);
    if (kind === undefined) {
      errors.push(
        problem(
          "POLICY_CONFIGMAP",
          key,
          `${where} ${JSON.stringify(k)} is unknown: use ${allowed}`,
        ),
      );
      continue;
    }
    if (parseUrl(value, `${where} ${k}`, errors) !== undefined) {
      merged[webhookAnnotation(kind)] = value;
    }
  }
  if (errors.length > 0) {
    // parseUrl names the key alone: say which annotation brought the ConfigMap in.
    for (const e of errors) {
      if (e.annotation !== key) {
        e.annotation = key;
        e.message = `${key}: ${e.message}`;
      }
    }
    return { annotations: own, errors };
  }
  return { annotations: { ...merged, ...own }, errors: [] };
}
