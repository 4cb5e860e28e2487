// Loads the grokked 1-layer modular-addition transformer of Nanda et al. 2023 (progress-measures-paper,
// saved_runs/wd_10-1_mod_addition_loss_curve.pth, converted to safetensors) into a HookedTransformer.
// The original stores every matrix [d_out, d_in] with heads in a leading axis; circuitscope stores
// [d_in, d_out] with heads side by side, so each weight is permuted here and every name and shape is
// checked. Also reads the training split and the stored loss curves, and writes a trained model back
// in the same folder layout so `--checkpoint` can analyse it. Not the analysis (fourier.ts).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSafetensors, saveSafetensors } from "../../io/safetensors.js";
import { makeConfig, type ModelConfig } from "../../model/config.js";
import { HookedTransformer } from "../../model/transformer.js";
import { noGrad } from "../../tensor/autodiff.js";
import { Tensor } from "../../tensor/tensor.js";

export class GrokkingCheckpointError extends Error {
  override name = "GrokkingCheckpointError";
}

/** The paper's architecture (§3, Appendix A): 1 layer, no LayerNorm, ReLU MLP, no attention biases. */
export function grokkingConfig(p: number, d_model = 128, n_heads = 4, d_mlp = 4 * d_model): ModelConfig {
  return makeConfig({
    architecture: "gpt2", d_model, n_layers: 1, n_heads, d_head: d_model / n_heads, d_mlp,
    d_vocab: p + 1, // residues 0..p-1 and "=" (token p)
    n_ctx: 3, act_fn: "relu", normalization_type: null, positional_embedding_type: "standard",
    attn_bias: false, mlp_bias: true, unembed_bias: false, tie_word_embeddings: false,
  });
}

export interface LossCurves { epochsPerPoint: number; train: number[]; test: number[] }

export interface GrokkingCheckpoint {
  model: HookedTransformer;
  p: number;
  /** Training pairs (a, b) as a set of a * p + b. */
  trainSet: Set<number>;
  curves: LossCurves | null;
  /** The checkpoint's config.json as read (training settings, provenance). */
  meta: Record<string, unknown>;
}

/** Original name → [expected original shape, map to our layout]. */
function plan(cfg: ModelConfig): [string, number[], string, (t: Tensor) => Tensor][] {
  const { d_model: D, n_heads: H, d_head: dh, d_mlp: M, d_vocab: V, n_ctx: C } = cfg;
  // [n_heads, d_head, d_model] → [d_model, n_heads * d_head]: q[h] = W_Q[h] @ x becomes x @ W[:, h*dh:(h+1)*dh].
  const heads = (t: Tensor) => t.permute([2, 0, 1]).contiguous().reshape([D, H * dh]);
  const T = (t: Tensor) => t.transpose(0, 1).contiguous();
  const id = (t: Tensor) => t.contiguous();
  return [
    ["embed.W_E", [D, V], "embed.W_E", T], // column t is token t's embedding → row t
    ["pos_embed.W_pos", [C, D], "pos_embed.W_pos", id],
    ["blocks.0.attn.W_Q", [H, dh, D], "blocks.0.attn.W_Q", heads],
    ["blocks.0.attn.W_K", [H, dh, D], "blocks.0.attn.W_K", heads],
    ["blocks.0.attn.W_V", [H, dh, D], "blocks.0.attn.W_V", heads],
    ["blocks.0.attn.W_O", [D, H * dh], "blocks.0.attn.W_O", T], // out = W_O @ concat_h z[h]
    ["blocks.0.mlp.W_in", [M, D], "blocks.0.mlp.W_in", T],
    ["blocks.0.mlp.b_in", [M], "blocks.0.mlp.b_in", id],
    ["blocks.0.mlp.W_out", [D, M], "blocks.0.mlp.W_out", T],
    ["blocks.0.mlp.b_out", [D], "blocks.0.mlp.b_out", id],
    ["unembed.W_U", [D, V], "unembed.W_U", id], // logits = x @ W_U already
  ];
}

/** Map a state dict in the original layout to a HookedTransformer; every name and shape is checked. */
export function modelFromOriginal(weights: Map<string, Tensor>, p: number): HookedTransformer {
  const D = weights.get("embed.W_E")?.shape[0];
  if (D === undefined) throw new GrokkingCheckpointError("missing embed.W_E");
  const cfg = grokkingConfig(p, D, weights.get("blocks.0.attn.W_Q")?.shape[0] ?? 4, weights.get("blocks.0.mlp.W_in")?.shape[0] ?? 4 * D);
  const ours = new Map<string, Tensor>();
  const issues: string[] = [];
  const steps = plan(cfg);
  for (const [name, shape, to, map] of steps) {
    const t = weights.get(name);
    if (!t) { issues.push(`missing ${name}`); continue; }
    if (t.shape.join(",") !== shape.join(",")) { issues.push(`${name}: expected [${shape}], got [${t.shape}]`); continue; }
    ours.set(to, map(t.cast("float32")));
  }
  for (const k of weights.keys()) if (!steps.some(([n]) => n === k)) issues.push(`unexpected ${k}`);
  if (issues.length) throw new GrokkingCheckpointError(`grokking checkpoint: ${issues.join("; ")}`);
  const model = new HookedTransformer(cfg);
  noGrad(() => model.loadStateDict(ours));
  return model;
}

/** Load `dir` = a folder with model.safetensors, config.json and (optionally) train_pairs.json, loss_curves.json. */
export function loadGrokkingCheckpoint(dir: string): GrokkingCheckpoint {
  const file = join(dir, "model.safetensors");
  if (!existsSync(file)) throw new GrokkingCheckpointError(`no model.safetensors in ${dir}`);
  const meta = existsSync(join(dir, "config.json")) ? JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown> : {};
  const tc = meta["training_config"] as { p?: number } | undefined;
  const weights = loadSafetensors(file);
  const p = tc?.p ?? weights.get("embed.W_E")!.shape[1]! - 1;
  const model = modelFromOriginal(weights, p);
  const trainSet = new Set<number>();
  const pairsFile = join(dir, "train_pairs.json");
  if (existsSync(pairsFile)) {
    const tp = JSON.parse(readFileSync(pairsFile, "utf8")) as { p: number; train_pairs: [number, number][] };
    if (tp.p !== p) throw new GrokkingCheckpointError(`train_pairs.json is for p = ${tp.p}, the model for p = ${p}`);
    for (const [a, b] of tp.train_pairs) trainSet.add(a * p + b);
  }
  let curves: LossCurves | null = null;
  const lc = join(dir, "loss_curves.json");
  if (existsSync(lc)) {
    const j = JSON.parse(readFileSync(lc, "utf8")) as { epochs_per_point: number; train_loss: number[]; test_loss: number[] };
    curves = { epochsPerPoint: j.epochs_per_point, train: j.train_loss, test: j.test_loss };
  }
  return { model, p, trainSet, curves, meta };
}

/** The inverse of modelFromOriginal: our [d_in, d_out] weights back to the original names and layouts. */
export function toOriginal(model: HookedTransformer): Map<string, Tensor> {
  const { d_model: D, n_heads: H, d_head: dh } = model.cfg;
  const sd = new Map(model.namedParameters().map(([n, t]) => [n, t as Tensor]));
  const get = (n: string) => { const t = sd.get(n); if (!t) throw new GrokkingCheckpointError(`toOriginal: the model has no ${n}`); return t; };
  // [d_model, n_heads * d_head] → [n_heads, d_head, d_model]
  const heads = (t: Tensor) => t.reshape([D, H, dh]).permute([1, 2, 0]).contiguous();
  const T = (t: Tensor) => t.transpose(0, 1).contiguous();
  return new Map<string, Tensor>([
    ["embed.W_E", T(get("embed.W_E"))], ["pos_embed.W_pos", get("pos_embed.W_pos").contiguous()],
    ["blocks.0.attn.W_Q", heads(get("blocks.0.attn.W_Q"))], ["blocks.0.attn.W_K", heads(get("blocks.0.attn.W_K"))], ["blocks.0.attn.W_V", heads(get("blocks.0.attn.W_V"))],
    ["blocks.0.attn.W_O", T(get("blocks.0.attn.W_O"))], ["blocks.0.mlp.W_in", T(get("blocks.0.mlp.W_in"))], ["blocks.0.mlp.b_in", get("blocks.0.mlp.b_in").contiguous()],
    ["blocks.0.mlp.W_out", T(get("blocks.0.mlp.W_out"))], ["blocks.0.mlp.b_out", get("blocks.0.mlp.b_out").contiguous()], ["unembed.W_U", get("unembed.W_U").contiguous()],
  ]);
}

/**
 * Write a model as a checkpoint folder loadGrokkingCheckpoint reads: model.safetensors (original
 * layouts), config.json, train_pairs.json and, when given, loss_curves.json. Each file is written to a
 * temporary name and renamed, so a folder never holds a half-written file.
 */
export function saveGrokkingCheckpoint(dir: string, model: HookedTransformer, p: number, trainSet: ReadonlySet<number>, curves: LossCurves | null, trainingConfig: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true });
  const json = (name: string, v: unknown) => { const f = join(dir, name); writeFileSync(f + ".tmp", JSON.stringify(v)); renameSync(f + ".tmp", f); };
  noGrad(() => saveSafetensors(join(dir, "model.safetensors"), toOriginal(model), { source: "circuitscope lab grokking --train" }));
  const c = model.cfg;
  json("config.json", {
    description: `1-layer transformer trained on (a + b) mod ${p} by circuitscope lab grokking`,
    training_config: { ...trainingConfig, p },
    architecture: { n_layers: 1, d_model: c.d_model, n_heads: c.n_heads, d_head: c.d_head, d_mlp: c.d_mlp, d_vocab: c.d_vocab, n_ctx: c.n_ctx, act_fn: c.act_fn, normalization: null },
  });
  const pairs = [...trainSet].sort((a, b) => a - b).map((r) => [Math.floor(r / p), r % p]);
  json("train_pairs.json", { p, n_train: pairs.length, train_pairs: pairs });
  if (curves) json("loss_curves.json", { epochs_per_point: curves.epochsPerPoint, train_loss: curves.train, test_loss: curves.test });
}
