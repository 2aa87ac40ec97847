/**
 * The statistics behind `verso.dev/confidence`: is a release's true error rate above a limit,
 * given e errors in n requests? One-sided exact binomial test. Pure.
 *
 * Why a test at all: with 15 requests one error is 6.7 %, "above 5 %", yet a release whose
 * true error rate is 1 % shows at least one error in 15 requests 14 % of the time. The test
 * asks how likely the observed count is if the true rate were exactly the limit, and fails
 * the gate only when that is unlikely (below 1 - confidence).
 */

/** ln(n!) by summing logs: exact enough for the sample sizes of one interval. */
function logFactorial(n: number): number {
  let s = 0;
  for (let k = 2; k <= n; k++) s += Math.log(k);
  return s;
}

/**
 * P(X >= x) for X ~ Binomial(n, p): the chance of seeing at least x errors in n requests when
 * each fails with probability p. Summed in log space so large n does not underflow.
 */
export function binomialTailAtLeast(x: number, n: number, p: number): number {
  if (x <= 0) return 1;
  if (x > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const lnN = logFactorial(n);
  const lnP = Math.log(p);
  const lnQ = Math.log1p(-p);
  let lnKFact = logFactorial(x - 1);
  let lnNKFact = logFactorial(n - x + 1);
  let tail = 0;
  for (let k = x; k <= n; k++) {
    lnKFact += Math.log(k);
    lnNKFact -= Math.log(n - k + 1);
    tail += Math.exp(lnN - lnKFact - lnNKFact + k * lnP + (n - k) * lnQ);
  }
  return Math.min(1, tail);
}

export interface RateTest {
  /** The rate is above the limit at the stated confidence. */
  above: boolean;
  /** P(at least this many errors | true rate = limit): the test's p-value. */
  pValue: number;
}

/** One-sided: H0 "true error rate <= limitPct", rejected when pValue < 1 - confidencePct. */
export function errorRateAbove(
  errors: number,
  requests: number,
  limitPct: number,
  confidencePct: number,
): RateTest {
  const pValue = binomialTailAtLeast(errors, requests, limitPct / 100);
  return { above: pValue < 1 - confidencePct / 100, pValue };
}
