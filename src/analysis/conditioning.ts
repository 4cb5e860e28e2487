// Ratios and normalisations whose denominator is ~0: (m − corrupted) / (clean − corrupted) on a pair
// whose clean and corrupted metrics agree to 1e-8 is rounding noise divided by rounding noise, not a
// measurement. ratio() returns the quotient with a flag, so every surface can say so and show the raw
// quantity instead of a meaningless "1.000".

/**
 * The rule: a denominator is ill-conditioned when |den| < RTOL · max(1, scale), where scale is the
 * magnitude of the quantities it is a difference of (e.g. max(|clean|, |corrupted|)).
 * Why 1e-6: float32 forward passes carry relative rounding error of 1e-7 to 1e-6 (eps 1.2e-7, grown
 * over sums), so a smaller difference cannot be told from 0; the floor of 1 because metrics are
 * differences of O(1) logits or losses, whose rounding error does not shrink with the metric itself.
 */
export const ILL_CONDITIONED_RTOL = 1e-6;

/** Whether a denominator is usable, with the numbers the decision was made from. */
export interface Conditioning {
  illConditioned: boolean;
  /** The denominator, e.g. clean − corrupted. */
  denominator: number;
  /** |denominator| below this is ill-conditioned: ILL_CONDITIONED_RTOL · max(1, scale). */
  threshold: number;
  /** The magnitude the threshold is relative to. */
  scale: number;
}

export interface Ratio extends Conditioning {
  /** num / den as computed (±Infinity or NaN when den is 0); meaningless when illConditioned. */
  value: number;
}

/** The threshold for a denominator relative to `scale` (see ILL_CONDITIONED_RTOL). */
export function conditioningThreshold(scale: number, rtol = ILL_CONDITIONED_RTOL): number {
  if (!(rtol > 0)) throw new RangeError(`conditioning: rtol must be > 0, got ${rtol}`);
  if (Number.isNaN(scale)) throw new RangeError("conditioning: scale is NaN");
  return rtol * Math.max(1, Math.abs(scale));
}

/** Whether `den` is ~0 relative to `scale`. A NaN denominator is ill-conditioned (nothing can be divided by it). */
export function conditioning(den: number, scale: number, rtol = ILL_CONDITIONED_RTOL): Conditioning {
  const threshold = conditioningThreshold(scale, rtol);
  return { illConditioned: !(Math.abs(den) >= threshold), denominator: den, threshold, scale: Math.abs(scale) };
}

/** num / den, flagged when den is ~0 relative to `scale`. */
export function ratio(num: number, den: number, scale: number, rtol = ILL_CONDITIONED_RTOL): Ratio {
  return { value: num / den, ...conditioning(den, scale, rtol) };
}

/** The conditioning of (m − corrupted) / (clean − corrupted): relative to the larger baseline's magnitude. */
export function spanConditioning(clean: number, corrupted: number, rtol = ILL_CONDITIONED_RTOL): Conditioning {
  return conditioning(clean - corrupted, Math.max(Math.abs(clean), Math.abs(corrupted)), rtol);
}

/** One sentence for a report: "ill-conditioned: clean − corrupted = 2.6e-8 (|·| < 1e-6)". */
export function describeIllConditioned(c: Conditioning, what = "clean − corrupted"): string {
  return `ill-conditioned: ${what} = ${c.denominator.toExponential(2)} (|·| < ${c.threshold.toExponential(1)} = ${(c.threshold / Math.max(1, c.scale)).toExponential(0)}·max(1, ${c.scale.toPrecision(3)}))`;
}
