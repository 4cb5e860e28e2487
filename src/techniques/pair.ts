// A clean/corrupted prompt pair with an answer and a wrong token, as patch, path-patch and discover
// take it: both prompts tokenized (same length required), the two single tokens resolved, and the
// logit difference measured on both runs with whether their gap is ~0 (conditioning.ts). Plus the
// words every such technique uses for an ill-conditioned pair. Bad input is an InputError naming the field.
import { noGrad } from "../tensor/autodiff.js";
import { logitDiffMetric } from "../analysis/patching-metrics.js";
import { describeIllConditioned, spanConditioning, type Conditioning } from "../analysis/conditioning.js";
import { bosField, promptField, promptIds, shownToken, singleToken, tokenField, tokenList } from "./inputs.js";
import { InputError, type Subject } from "./technique.js";

/** The pair's schema fields, spread into a technique's input object. */
export const pairFields = {
  clean: promptField("the clean prompt"),
  corrupted: promptField("the corrupted prompt (the same number of tokens as the clean one)"),
  answer: tokenField("the answer token; the metric is logit(answer) − logit(wrong) at the last position"),
  wrong: tokenField("the wrong token"),
  bos: bosField,
};

export interface PairInput { clean: string | number[]; corrupted: string | number[]; answer: string | number; wrong: string | number; bos: boolean }

export function contrastPair(s: Subject, t: PairInput) {
  const clean = promptIds(s, "clean", t.clean, t.bos), corrupted = promptIds(s, "corrupted", t.corrupted, t.bos);
  const cleanToks = tokenList(s, clean), corruptedToks = tokenList(s, corrupted);
  const strs = (x: { str: string }[]) => JSON.stringify(x.map((y) => y.str));
  if (clean.length !== corrupted.length)
    throw new InputError("corrupted", `the clean and corrupted prompts must have the same number of tokens: clean has ${clean.length} ${strs(cleanToks)}, corrupted has ${corrupted.length} ${strs(corruptedToks)}`);
  const answer = singleToken(s, "answer", t.answer), wrong = singleToken(s, "wrong", t.wrong);
  const base = logitDiffMetric([answer, wrong]);
  const cleanLd = noGrad(() => base.compute(s.model.forward([clean])).item());
  const corruptedLd = noGrad(() => base.compute(s.model.forward([corrupted])).item());
  // Equal or nearly equal logit differences cannot be normalised by: techniques flag it and show the raw metric.
  const conditioning = spanConditioning(cleanLd, corruptedLd);
  // A position where the prompts differ is labelled with both tokens.
  const posLabels = cleanToks.map((c, i) => c.str === corruptedToks[i]!.str ? shownToken(c.str) : `${shownToken(c.str)}/${shownToken(corruptedToks[i]!.str)}`);
  const doc = {
    clean: { prompt: t.clean, tokens: cleanToks },
    corrupted: { prompt: t.corrupted, tokens: corruptedToks },
    answer: tokenList(s, [answer])[0]!, wrong: tokenList(s, [wrong])[0]!,
  };
  return { clean, corrupted, answer, wrong, base, cleanLd, corruptedLd, conditioning, posLabels, doc };
}

/** The result fields of a clean/corrupted normalisation's conditioning (patch, path-patch, discover). */
export function conditioningFields(c: Conditioning) {
  return { normalized: !c.illConditioned, illConditioned: c.illConditioned, denominator: c.denominator, threshold: c.threshold, ...(c.illConditioned ? { note: illText(c) } : {}) };
}
/** The text report's warning line. */
export const illText = (c: Conditioning) => `${describeIllConditioned(c)}: the normalised metric would be noise; showing the raw logit difference`;
/** A picture title's warning. */
export const illTitle = (c: Pick<Conditioning, "denominator">) => `ill-conditioned: clean − corrupted = ${c.denominator.toPrecision(2)}; showing the raw metric`;
