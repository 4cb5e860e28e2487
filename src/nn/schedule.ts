// Learning-rate schedules as pure functions of the step (0-based: the step about to be taken).
// Apply one with `opt.setLr(schedule(step))` before `opt.step()`. Nothing here holds state, so a
// resumed run gets the same rates by passing the same step numbers.

/** step (0, 1, 2, …) → learning rate. */
export type Schedule = (step: number) => number;

function checkStep(step: number): void {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`schedule: step must be a non-negative integer, got ${step}`);
}

function checkNonNegInt(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`schedule: ${what} must be a non-negative integer, got ${n}`);
}

/** The same rate at every step. */
export function constantSchedule(lr: number): Schedule {
  return (step) => { checkStep(step); return lr; };
}

/**
 * nanoGPT's warm-up: lr·(step + 1)/(warmupSteps + 1) for step < warmupSteps, so the first step is
 * not wasted at rate 0; lr from warmupSteps on.
 */
export function linearWarmupSchedule(opts: { lr: number; warmupSteps: number }): Schedule {
  const { lr, warmupSteps } = opts;
  checkNonNegInt("warmupSteps", warmupSteps);
  return (step) => {
    checkStep(step);
    return step < warmupSteps ? (lr * (step + 1)) / (warmupSteps + 1) : lr;
  };
}

/**
 * nanoGPT's get_lr (karpathy/nanoGPT train.py): the warm-up above to maxLr, then cosine decay
 * minLr + ½(1 + cos(π·r))·(maxLr − minLr) with r = (step − warmupSteps)/(decaySteps − warmupSteps),
 * reaching minLr at step decaySteps (nanoGPT's lr_decay_iters) and staying there.
 */
export function cosineSchedule(opts: { maxLr: number; minLr: number; warmupSteps: number; decaySteps: number }): Schedule {
  const { maxLr, minLr, warmupSteps, decaySteps } = opts;
  checkNonNegInt("warmupSteps", warmupSteps);
  checkNonNegInt("decaySteps", decaySteps);
  if (decaySteps <= warmupSteps) throw new RangeError(`cosineSchedule: decaySteps (${decaySteps}) must exceed warmupSteps (${warmupSteps})`);
  return (step) => {
    checkStep(step);
    if (step < warmupSteps) return (maxLr * (step + 1)) / (warmupSteps + 1);
    if (step > decaySteps) return minLr;
    const r = (step - warmupSteps) / (decaySteps - warmupSteps);
    return minLr + 0.5 * (1 + Math.cos(Math.PI * r)) * (maxLr - minLr);
  };
}

/** lr·gamma^⌊step / stepSize⌋, as torch.optim.lr_scheduler.StepLR. */
export function stepDecaySchedule(opts: { lr: number; stepSize: number; gamma: number }): Schedule {
  const { lr, stepSize, gamma } = opts;
  if (!Number.isInteger(stepSize) || stepSize < 1) throw new RangeError(`stepDecaySchedule: stepSize must be a positive integer, got ${stepSize}`);
  return (step) => {
    checkStep(step);
    return lr * Math.pow(gamma, Math.floor(step / stepSize));
  };
}
