// Feature dashboards for chosen SAE latents, as Neuronpedia shows them: max-activating examples with
// their context, the activation histogram and firing density over a corpus (the streaming top-k and
// histogram of analysis/neurons.ts, run on the SAE's latents through its `units` option), and the
// tokens whose logits the latent's decoder direction raises and lowers most: W_dec[i] carried to the
// residual stream, centred (LayerNorm) and scaled by ln_final's weight, then · W_U. Like Neuronpedia's
// this ignores the final norm's token-dependent scale, so it ranks tokens rather than predicting logits.
import { activationHistogram, maxActivatingExamples, neuronActivations, type ActivatingExample, type NeuronHistogram, type NeuronTokenBatch } from "../analysis/neurons.js";
import { noGrad } from "../tensor/autodiff.js";
import type { Tensor } from "../tensor/tensor.js";
import type { HookName } from "../model/hooks.js";
import type { HookedTransformer } from "../model/transformer.js";
import type { SparseAutoencoder } from "./model.js";

export interface LogitEffect { token: number; value: number }

export interface LatentLogits {
  /** Where the decoder direction was read into the residual stream (e.g. "direct", "through W_out of block 0"). */
  via: string;
  positive: LogitEffect[];
  negative: LogitEffect[];
}

export interface LatentDashboard {
  latent: number;
  /** Fraction of scanned tokens on which the latent fires (> 0). */
  density: number;
  histogram: NeuronHistogram;
  examples: (ActivatingExample & { acts: number[] })[];
  logits: LatentLogits | null;
}

export interface DashboardOptions {
  latents: readonly number[];
  k?: number;               // examples per latent (default 8)
  contextBefore?: number;   // default 10
  contextAfter?: number;    // default 4
  bins?: number;            // histogram bins (default 40)
  skipPositions?: number;   // e.g. 1 to leave out a BOS column
  topLogits?: number;       // tokens per side (default 10)
}

/** The residual-stream direction of each latent's decoder row, or null with the reason. */
function residualDirections(model: HookedTransformer, sae: SparseAutoencoder): { dirs: Tensor; via: string } | { dirs: null; via: string } {
  const hook = sae.cfg.hook_name_out, d = sae.cfg.d_out, dModel = model.cfg.d_model;
  const post = /^blocks\.(\d+)\.mlp\.hook_post$/.exec(hook);
  if (post) {
    const mlp = model.blocks.at(Number(post[1])).mlp;
    if (!mlp) return { dirs: null, via: `${hook} has no MLP` };
    return { dirs: sae.W_dec.matmul(mlp.W_out), via: `through W_out of block ${post[1]}` };
  }
  const residual = /^(hook_embed|hook_pos_embed|blocks\.\d+\.(hook_resid_pre|hook_resid_mid|hook_resid_post|hook_attn_out|hook_mlp_out))$/.test(hook);
  if (residual && d === dModel) return { dirs: sae.W_dec, via: "direct" };
  return { dirs: null, via: `${hook} is not in the residual stream (or d_out ${d} ≠ d_model ${dModel})` };
}

/** The top positive and negative logit effects of each latent's decoder direction. */
export function latentLogitEffects(model: HookedTransformer, sae: SparseAutoencoder, latents: readonly number[], n = 10): (LatentLogits | null)[] {
  return noGrad(() => {
    const r = residualDirections(model, sae);
    if (!r.dirs) return latents.map(() => null);
    let dirs = r.dirs.indexSelect(0, [...latents]); // [latents, d_model]
    const ln = model.ln_final;
    if (ln) {
      if (model.cfg.normalization_type === "LN") dirs = dirs.sub(dirs.mean(-1, true));
      dirs = dirs.mul(ln.w);
    }
    const eff = dirs.matmul(model.unembed.W_U).toArray(); // [latents, d_vocab]
    const V = model.cfg.d_vocab, m = Math.min(n, V);
    return latents.map((_, i) => {
      const row = Array.from(eff.subarray(i * V, (i + 1) * V), (value, token) => ({ token, value }));
      row.sort((a, b) => b.value - a.value || a.token - b.token);
      return { via: r.via, positive: row.slice(0, m), negative: row.slice(-m).reverse() };
    });
  });
}

/** Dashboards of the chosen latents over a corpus of token batches (an array: it is scanned twice). */
export function latentDashboards(model: HookedTransformer, sae: SparseAutoencoder, batches: readonly NeuronTokenBatch[], o: DashboardOptions): LatentDashboard[] {
  for (const l of o.latents) if (!Number.isInteger(l) || l < 0 || l >= sae.cfg.d_sae) throw new RangeError(`sae dashboard: latent ${l} out of range [0, ${sae.cfg.d_sae})`);
  const hook = sae.cfg.hook_name as HookName;
  const layer = Number(/^blocks\.(\d+)\./.exec(hook)?.[1] ?? 0);
  const units = (a: Tensor) => sae.encode(a);
  const scan = { layer, hook, units, neurons: o.latents, skipPositions: o.skipPositions ?? 0 };
  const hists = activationHistogram(model, batches, { ...scan, bins: o.bins ?? 40 });
  const found = maxActivatingExamples(model, batches, { ...scan, k: o.k ?? 8, contextBefore: o.contextBefore ?? 10, contextAfter: o.contextAfter ?? 4 });
  // Every token of each shown window, coloured by the latent: one more pass over those sequences only.
  const rows = batches.flatMap((b) => (Array.isArray(b) ? (b as number[][]) : tensorRows(b as Tensor)));
  const seqs = [...new Set(found.flatMap((f) => f.examples.map((e) => e.sequence)))].sort((a, b) => a - b);
  const acts = new Map<number, number[][]>();
  const B = 16;
  for (let i = 0; i < seqs.length; i += B) {
    const part = seqs.slice(i, i + B);
    neuronActivations(model, part.map((s) => rows[s]!), { ...scan }).forEach((a, j) => acts.set(part[j]!, a));
  }
  const logits = latentLogitEffects(model, sae, o.latents, o.topLogits ?? 10);
  return found.map((f, j) => ({
    latent: f.neuron,
    density: hists[j]!.fractionPositive,
    histogram: hists[j]!,
    examples: f.examples.map((e) => ({ ...e, acts: e.tokens.map((_, t) => acts.get(e.sequence)![e.windowStart + t]![j]!) })),
    logits: logits[j]!,
  }));
}

function tensorRows(t: Tensor): number[][] {
  const [R, L] = t.shape as [number, number], d = t.toArray();
  return Array.from({ length: R }, (_, r) => Array.from(d.subarray(r * L, (r + 1) * L)));
}
