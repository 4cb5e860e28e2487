// How good an SAE or transcoder is, on held-out activations and inside the model:
//  - reconstructionMetrics: per-element MSE, explained variance 1 − Σ‖y − ŷ‖² / Σ‖y − ȳ‖² (ȳ the
//    mean over tokens), L0 and L1 of the latents per token, each latent's firing frequency, the
//    dead (never fired) and dense (> denseThreshold) fractions, and the histogram of log10 frequency.
//  - downstreamMetrics: next-token cross-entropy with the reconstruction spliced in at the output
//    hook (sae), with the clean activation (clean) and with zeros there (zero), the fraction of CE
//    recovered (CE_zero − CE_sae)/(CE_zero − CE_clean), and KL(clean ‖ spliced) per position.
// Sums are accumulated in float64.
import { noGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";
import { Tensor } from "../tensor/tensor.js";
import { concat } from "../tensor/ops/movement.js";
import type { HookName } from "../model/hooks.js";
import type { HookedTransformer } from "../model/transformer.js";
import type { ActivationRows } from "./activations.js";
import type { SparseAutoencoder } from "./model.js";
import { ratio, type Conditioning } from "../analysis/conditioning.js";

export interface ReconstructionMetrics {
  tokens: number;
  mse: number;
  explainedVariance: number;
  l0: number;
  l1: number;
  deadFraction: number;
  denseFraction: number;
  denseThreshold: number;
  /** Fraction of tokens on which each latent fires (f > 0), [d_sae]. */
  firingFrequency: number[];
  /** Histogram of log10(frequency) over latents that fired at least once; dead ones are counted apart. */
  density: { edges: number[]; counts: number[]; dead: number };
}

export interface ReconstructionOptions { denseThreshold?: number; bins?: number; batchTokens?: number }

/** Metrics of sae on rows x → y (y = x for an SAE). */
export function reconstructionMetrics(sae: SparseAutoencoder, rows: ActivationRows, o: ReconstructionOptions = {}): ReconstructionMetrics {
  const { d_in, d_sae, d_out } = sae.cfg;
  if (rows.dIn !== d_in || rows.dOut !== d_out) throw new RangeError(`sae metrics: rows are ${rows.dIn} → ${rows.dOut}, the SAE ${d_in} → ${d_out}`);
  const B = o.batchTokens ?? 1024, n = rows.n;
  if (n === 0) throw new RangeError("sae metrics: no tokens");
  let sse = 0, l0 = 0, l1 = 0;
  const sumY = new Float64Array(d_out), sumY2 = new Float64Array(d_out), fires = new Float64Array(d_sae);
  for (let s = 0; s < n; s += B) {
    const m = Math.min(B, n - s);
    scope(() => noGrad(() => {
      const x = new Tensor(rows.x.slice(s * d_in, (s + m) * d_in), [m, d_in]);
      const y = rows.y.subarray(s * d_out, (s + m) * d_out);
      const f = sae.encode(x);
      const dec = sae.decode(f), skip = sae.skipOf(x);
      const yh = (skip ? dec.add(skip) : dec).toArray(), fa = f.toArray();
      for (let i = 0; i < y.length; i++) {
        const e = yh[i]! - y[i]!;
        sse += e * e;
        sumY[i % d_out]! += y[i]!; sumY2[i % d_out]! += y[i]! * y[i]!;
      }
      for (let i = 0; i < fa.length; i++) {
        const v = fa[i]!;
        if (v !== 0) { l0++; l1 += Math.abs(v); }
        if (v > 0) fires[i % d_sae]!++;
      }
    }));
  }
  let sst = 0;
  for (let j = 0; j < d_out; j++) sst += sumY2[j]! - (sumY[j]! * sumY[j]!) / n;
  const freq = Array.from(fires, (c) => c / n);
  const denseThreshold = o.denseThreshold ?? 0.1;
  const bins = o.bins ?? 30;
  const lo = Math.min(-1, Math.floor(Math.log10(1 / n))), edges = Array.from({ length: bins + 1 }, (_, i) => lo + (-lo * i) / bins);
  const counts = new Array<number>(bins).fill(0);
  let dead = 0;
  for (const q of freq) {
    if (q === 0) { dead++; continue; }
    counts[Math.min(bins - 1, Math.max(0, Math.floor(((Math.log10(q) - lo) / -lo) * bins)))]!++;
  }
  return {
    tokens: n, mse: sse / (n * d_out), explainedVariance: sst > 0 ? 1 - sse / sst : NaN, l0: l0 / n, l1: l1 / n,
    deadFraction: dead / d_sae, denseFraction: freq.filter((q) => q > denseThreshold).length / d_sae, denseThreshold,
    firingFrequency: freq, density: { edges, counts, dead },
  };
}

export interface DownstreamMetrics {
  /** Next-token predictions scored (positions ≥ skipPositions, all but the last of each window). */
  predictions: number;
  ceClean: number;
  ceSae: number;
  ceZero: number;
  /** (CE_zero − CE_sae) / (CE_zero − CE_clean); noise when ceRecoveredConditioning.illConditioned. */
  ceRecovered: number;
  /** Whether CE_zero − CE_clean is ~0 (conditioning.ts, relative to the larger CE): zero-ablation costs nothing, so there is nothing to recover. */
  ceRecoveredConditioning: Conditioning;
  /** Mean over predictions of KL(p_clean ‖ p_sae) and KL(p_clean ‖ p_zero), in nats. */
  klSae: number;
  klZero: number;
}

/** Replace positions ≥ skip of a [batch, pos, d] activation by r's. */
function splice(a: Tensor, r: Tensor, skip: number): Tensor {
  if (skip <= 0) return r.cast(a.dtype);
  if (skip >= a.shape[1]!) return a;
  return concat([a.slice(1, 0, skip), r.cast(a.dtype).slice(1, skip)], 1);
}

/** The model's logits with the SAE's output (or zeros) in place of hook_name_out. */
export function splicedLogits(model: HookedTransformer, sae: SparseAutoencoder, tokens: readonly (readonly number[])[], mode: "sae" | "zero" | "clean", skipPositions = 0): Tensor {
  const hookIn = sae.cfg.hook_name as HookName, hookOut = sae.cfg.hook_name_out as HookName;
  if (mode === "clean") return model.forward(tokens as number[][]);
  if (mode === "zero") return model.runWithHooks(tokens as number[][], { fwd: [[hookOut, (a: Tensor) => splice(a, a.mul(0), skipPositions)]] });
  if (hookIn === hookOut) return model.runWithHooks(tokens as number[][], { fwd: [[hookOut, (a: Tensor) => splice(a, sae.forward(a), skipPositions)]] });
  let input: Tensor | null = null;
  return model.runWithHooks(tokens as number[][], {
    fwd: [
      [hookIn, (a: Tensor) => { input = a; }],
      [hookOut, (a: Tensor) => {
        if (!input) throw new Error(`sae: ${hookIn} did not fire before ${hookOut}`);
        return splice(a, sae.forward(input), skipPositions);
      }],
    ],
  });
}

/** Per prediction: log-probabilities of each row of logits [rows, V], in float64. */
function logProbRows(l: ArrayLike<number>, V: number, row: number): Float64Array {
  let m = -Infinity;
  for (let v = 0; v < V; v++) m = Math.max(m, l[row * V + v]!);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(l[row * V + v]! - m);
  const lse = m + Math.log(s), out = new Float64Array(V);
  for (let v = 0; v < V; v++) out[v] = l[row * V + v]! - lse;
  return out;
}

/** CE and KL of the spliced model against the clean one over batches of token windows. */
export function downstreamMetrics(model: HookedTransformer, sae: SparseAutoencoder, batches: readonly (readonly (readonly number[])[])[], opts: { skipPositions?: number } = {}): DownstreamMetrics {
  const skip = opts.skipPositions ?? 0;
  let n = 0, ceC = 0, ceS = 0, ceZ = 0, klS = 0, klZ = 0;
  for (const batch of batches) {
    scope(() => noGrad(() => {
      const [c, s, z] = (["clean", "sae", "zero"] as const).map((m) => splicedLogits(model, sae, batch, m, skip).toArray());
      const T = batch[0]!.length, V = model.cfg.d_vocab;
      batch.forEach((row, b) => {
        for (let t = skip; t < T - 1; t++) {
          const r = b * T + t, target = row[t + 1]!;
          const pc = logProbRows(c!, V, r), ps = logProbRows(s!, V, r), pz = logProbRows(z!, V, r);
          ceC -= pc[target]!; ceS -= ps[target]!; ceZ -= pz[target]!;
          for (let v = 0; v < V; v++) { const p = Math.exp(pc[v]!); if (p > 0) { klS += p * (pc[v]! - ps[v]!); klZ += p * (pc[v]! - pz[v]!); } }
          n++;
        }
      });
    }));
  }
  if (n === 0) throw new RangeError("sae downstream metrics: no predictions (windows too short for skipPositions)");
  ceC /= n; ceS /= n; ceZ /= n;
  const rec = ratio(ceZ - ceS, ceZ - ceC, Math.max(Math.abs(ceZ), Math.abs(ceC)));
  const { value: ceRecovered, ...ceRecoveredConditioning } = rec;
  return { predictions: n, ceClean: ceC, ceSae: ceS, ceZero: ceZ, ceRecovered, ceRecoveredConditioning, klSae: klS / n, klZero: klZ / n };
}
