// Hugging Face weight names and layouts ↔ circuitscope's state dict, both ways, for GPT-2, GPT-NeoX
// and Llama. Each family is one table of rules; a rule names the HF tensors it reads (with the shape
// the config implies), the circuitscope keys it fills, and the two layout transforms. Loading checks
// every name and shape before copying anything, then moves one rule's tensors at a time (so peak
// memory is the model plus one layer's weights, never two models).
//
// Layouts (circuitscope stores every matmul weight [d_in, d_out], heads side by side):
// - GPT-2 (modeling_gpt2.py): Conv1D weights are already [in, out]; c_attn packs Q|K|V as column blocks.
// - GPT-NeoX (modeling_gpt_neox.py): torch Linear weights are [out, in]; query_key_value's output rows
//   are grouped per head: for head h, rows [3h·d_head, 3h·d_head + d_head) are Q, then K, then V.
// - Llama (modeling_llama.py): torch Linear [out, in]; q_proj/k_proj rows are used with rotate_half
//   as-is (circuitscope's rotary uses the same convention, so no permutation).
//
// This file does not read config.json or folders (hf-config.ts, snapshot.ts do).
import { noGrad } from "../tensor/autodiff.js";
import { concat, select, stack } from "../tensor/ops/movement.js";
import { fmt, shapeEq } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import type { StateDictIssue } from "../nn/module.js";
import type { ModelConfig } from "../model/config.js";
import type { HookedTransformer } from "../model/transformer.js";
import { allFinite, NonFiniteError, nonFiniteAt } from "../model/finite.js";
import type { TensorSource } from "./safetensors.js";

/** A checkpoint whose tensors do not fit the config: every missing, unexpected or misshapen HF tensor is listed. */
export class HFWeightsError extends Error {
  override name = "HFWeightsError";
  constructor(readonly location: string, readonly issues: StateDictIssue[]) {
    super(`${location}: ${issues.length} problem${issues.length === 1 ? "" : "s"} with the Hugging Face weights:\n  ${issues.map((i) => i.message).join("\n  ")}`);
  }
}

interface HFSpec { name: string; shape: number[] }

interface Rule {
  hf: HFSpec[];
  ours: string[];
  toOurs(hf: Tensor[]): Tensor[];
  toHF(ours: Tensor[]): Tensor[];
  /** Reads an HF tensor that another rule writes (a tied unembedding): used when loading, skipped when saving. */
  loadOnly?: boolean;
}

const T = (t: Tensor): Tensor => t.transpose(0, 1).contiguous();

/** Same layout both ways. */
const same = (name: string, shape: number[], ours: string): Rule =>
  ({ hf: [{ name, shape }], ours: [ours], toOurs: ([t]) => [t!], toHF: ([t]) => [t!] });

/** A torch nn.Linear weight [out, in] ↔ our [in, out]. */
const linearT = (name: string, outIn: [number, number], ours: string): Rule =>
  ({ hf: [{ name, shape: outIn }], ours: [ours], toOurs: ([t]) => [T(t!)], toHF: ([t]) => [T(t!)] });

/** An unembedding read from the embedding [d_vocab, d_model] (tie_word_embeddings). */
const tiedUnembed = (embedName: string, cfg: ModelConfig): Rule =>
  ({ hf: [{ name: embedName, shape: [cfg.d_vocab, cfg.d_model] }], ours: ["unembed.W_U"], toOurs: ([t]) => [T(t!)], toHF: () => [], loadOnly: true });

/** Which families have HF weight tables. */
type Family = "gpt2" | "neox" | "llama";

export function hfFamily(cfg: ModelConfig): Family {
  switch (cfg.architecture) {
    case "gpt2": case "neox": case "llama": return cfg.architecture;
    case "attn-only": throw new Error("Hugging Face weights: attention-only models have no Hugging Face layout");
    default: return cfg.architecture satisfies never;
  }
}

/** The base-model prefix each family's HF classes use ("transformer.h.0…"); checkpoints saved from the bare model omit it. */
const BASE_PREFIX: Record<Family, string> = { gpt2: "transformer.", neox: "gpt_neox.", llama: "model." };
const EMBED: Record<Family, string> = { gpt2: "wte.weight", neox: "embed_in.weight", llama: "embed_tokens.weight" };
/** Old checkpoints carry buffers (causal masks, rotary frequencies) that are not weights; HF ignores them on load too. */
const IGNORED: Record<Family, RegExp> = {
  gpt2: /(^|\.)h\.\d+\.attn\.(bias|masked_bias)$/,
  neox: /(^|\.)layers\.\d+\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/,
  llama: /(^|\.)layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/,
};
const UNEMBED: Record<Family, string> = { gpt2: "lm_head.weight", neox: "embed_out.weight", llama: "lm_head.weight" };

function rules(cfg: ModelConfig, family: Family, prefix: string, tied: boolean): Rule[] {
  switch (family) {
    case "gpt2": return gpt2Rules(cfg, prefix, tied);
    case "neox": return neoxRules(cfg, prefix, tied);
    case "llama": return llamaRules(cfg, prefix, tied);
    default: return family satisfies never;
  }
}

// modeling_gpt2.py (v4.40): GPT2LMHeadModel(transformer = GPT2Model(wte, wpe, h[l], ln_f), lm_head).
function gpt2Rules(cfg: ModelConfig, p: string, tied: boolean): Rule[] {
  const { d_model: D, d_mlp: M, d_vocab: V, n_ctx } = cfg;
  const out: Rule[] = [same(`${p}wte.weight`, [V, D], "embed.W_E"), same(`${p}wpe.weight`, [n_ctx, D], "pos_embed.W_pos")];
  for (let l = 0; l < cfg.n_layers; l++) {
    const h = `${p}h.${l}.`, b = `blocks.${l}.`;
    out.push(
      same(`${h}ln_1.weight`, [D], `${b}ln1.w`), same(`${h}ln_1.bias`, [D], `${b}ln1.b`),
      {
        // Conv1D c_attn: x @ W [d_model, 3 d_model] + b; the output columns are Q | K | V (GPT2Attention.forward split(split_size, dim=2)).
        hf: [{ name: `${h}attn.c_attn.weight`, shape: [D, 3 * D] }, { name: `${h}attn.c_attn.bias`, shape: [3 * D] }],
        ours: [`${b}attn.W_Q`, `${b}attn.W_K`, `${b}attn.W_V`, `${b}attn.b_Q`, `${b}attn.b_K`, `${b}attn.b_V`],
        toOurs: ([w, bias]) => [0, 1, 2].map((j) => w!.slice(1, j * D, (j + 1) * D).contiguous()).concat([0, 1, 2].map((j) => bias!.slice(0, j * D, (j + 1) * D).contiguous())),
        toHF: ([wq, wk, wv, bq, bk, bv]) => [concat([wq!, wk!, wv!], 1), concat([bq!, bk!, bv!], 0)],
      },
      same(`${h}attn.c_proj.weight`, [D, D], `${b}attn.W_O`), same(`${h}attn.c_proj.bias`, [D], `${b}attn.b_O`),
      same(`${h}ln_2.weight`, [D], `${b}ln2.w`), same(`${h}ln_2.bias`, [D], `${b}ln2.b`),
      same(`${h}mlp.c_fc.weight`, [D, M], `${b}mlp.W_in`), same(`${h}mlp.c_fc.bias`, [M], `${b}mlp.b_in`),
      same(`${h}mlp.c_proj.weight`, [M, D], `${b}mlp.W_out`), same(`${h}mlp.c_proj.bias`, [D], `${b}mlp.b_out`),
    );
  }
  out.push(same(`${p}ln_f.weight`, [D], "ln_final.w"), same(`${p}ln_f.bias`, [D], "ln_final.b"));
  // lm_head is a torch Linear(d_model, d_vocab, bias=False): weight [d_vocab, d_model].
  out.push(tied ? tiedUnembed(`${p}wte.weight`, cfg) : linearT("lm_head.weight", [V, D], "unembed.W_U"));
  return out;
}

// modeling_gpt_neox.py (v4.40): GPTNeoXForCausalLM(gpt_neox = GPTNeoXModel(embed_in, layers[l], final_layer_norm), embed_out).
function neoxRules(cfg: ModelConfig, p: string, tied: boolean): Rule[] {
  const { d_model: D, d_mlp: M, d_vocab: V, n_heads: H, d_head: dh } = cfg;
  const out: Rule[] = [same(`${p}embed_in.weight`, [V, D], "embed.W_E")];
  for (let l = 0; l < cfg.n_layers; l++) {
    const h = `${p}layers.${l}.`, b = `blocks.${l}.`;
    out.push(same(`${h}input_layernorm.weight`, [D], `${b}ln1.w`), same(`${h}input_layernorm.bias`, [D], `${b}ln1.b`));
    // GPTNeoXAttention: qkv.view(..., n_heads, 3 * head_size), then Q, K, V are consecutive d_head slices per head.
    // Weight rows [3·H·d_head] = [H, 3, d_head] (torch Linear [out, in]); bias likewise.
    out.push({
      hf: [{ name: `${h}attention.query_key_value.weight`, shape: [3 * H * dh, D] }],
      ours: [`${b}attn.W_Q`, `${b}attn.W_K`, `${b}attn.W_V`],
      toOurs: ([w]) => {
        const g = w!.reshape([H, 3, dh, D]); // [head_index, q|k|v, d_head, d_model]
        return [0, 1, 2].map((j) => T(select(g, 1, j).reshape([H * dh, D]))); // each [d_model, head_index·d_head]
      },
      toHF: ([wq, wk, wv]) => [stack([wq!, wk!, wv!].map((w) => T(w).reshape([H, dh, D])), 1).reshape([3 * H * dh, D])],
    });
    if (cfg.attn_bias) {
      out.push({
        hf: [{ name: `${h}attention.query_key_value.bias`, shape: [3 * H * dh] }],
        ours: [`${b}attn.b_Q`, `${b}attn.b_K`, `${b}attn.b_V`],
        toOurs: ([bias]) => [0, 1, 2].map((j) => select(bias!.reshape([H, 3, dh]), 1, j).reshape([H * dh]).contiguous()),
        toHF: ([bq, bk, bv]) => [stack([bq!, bk!, bv!].map((x) => x.reshape([H, dh])), 1).reshape([3 * H * dh])],
      });
    }
    out.push(linearT(`${h}attention.dense.weight`, [D, H * dh], `${b}attn.W_O`));
    if (cfg.attn_bias) out.push(same(`${h}attention.dense.bias`, [D], `${b}attn.b_O`));
    out.push(
      same(`${h}post_attention_layernorm.weight`, [D], `${b}ln2.w`), same(`${h}post_attention_layernorm.bias`, [D], `${b}ln2.b`),
      linearT(`${h}mlp.dense_h_to_4h.weight`, [M, D], `${b}mlp.W_in`), same(`${h}mlp.dense_h_to_4h.bias`, [M], `${b}mlp.b_in`),
      linearT(`${h}mlp.dense_4h_to_h.weight`, [D, M], `${b}mlp.W_out`), same(`${h}mlp.dense_4h_to_h.bias`, [D], `${b}mlp.b_out`),
    );
  }
  out.push(same(`${p}final_layer_norm.weight`, [D], "ln_final.w"), same(`${p}final_layer_norm.bias`, [D], "ln_final.b"));
  out.push(tied ? tiedUnembed(`${p}embed_in.weight`, cfg) : linearT("embed_out.weight", [V, D], "unembed.W_U"));
  return out;
}

// modeling_llama.py (v4.40): LlamaForCausalLM(model = LlamaModel(embed_tokens, layers[l], norm), lm_head).
function llamaRules(cfg: ModelConfig, p: string, tied: boolean): Rule[] {
  const { d_model: D, d_mlp: M, d_vocab: V, n_heads: H, d_head: dh, n_key_value_heads: Hkv } = cfg;
  const out: Rule[] = [same(`${p}embed_tokens.weight`, [V, D], "embed.W_E")];
  for (let l = 0; l < cfg.n_layers; l++) {
    const h = `${p}layers.${l}.`, b = `blocks.${l}.`;
    out.push(
      same(`${h}input_layernorm.weight`, [D], `${b}ln1.w`),
      linearT(`${h}self_attn.q_proj.weight`, [H * dh, D], `${b}attn.W_Q`),
      linearT(`${h}self_attn.k_proj.weight`, [Hkv * dh, D], `${b}attn.W_K`),
      linearT(`${h}self_attn.v_proj.weight`, [Hkv * dh, D], `${b}attn.W_V`),
      linearT(`${h}self_attn.o_proj.weight`, [D, H * dh], `${b}attn.W_O`),
    );
    if (cfg.attn_bias) {
      out.push(
        same(`${h}self_attn.q_proj.bias`, [H * dh], `${b}attn.b_Q`), same(`${h}self_attn.k_proj.bias`, [Hkv * dh], `${b}attn.b_K`),
        same(`${h}self_attn.v_proj.bias`, [Hkv * dh], `${b}attn.b_V`), same(`${h}self_attn.o_proj.bias`, [D], `${b}attn.b_O`),
      );
    }
    // LlamaMLP: down_proj(act(gate_proj(x)) * up_proj(x)); circuitscope's W_gate is the activated branch, W_in the linear one.
    out.push(
      same(`${h}post_attention_layernorm.weight`, [D], `${b}ln2.w`),
      linearT(`${h}mlp.gate_proj.weight`, [M, D], `${b}mlp.W_gate`),
      linearT(`${h}mlp.up_proj.weight`, [M, D], `${b}mlp.W_in`),
      linearT(`${h}mlp.down_proj.weight`, [D, M], `${b}mlp.W_out`),
    );
  }
  out.push(same(`${p}norm.weight`, [D], "ln_final.w"));
  out.push(tied ? tiedUnembed(`${p}embed_tokens.weight`, cfg) : linearT("lm_head.weight", [V, D], "unembed.W_U"));
  return out;
}

/** Every state-dict key of the model must be filled by exactly one rule; anything else is a config the tables do not cover. */
function checkCoverage(model: HookedTransformer, rs: Rule[]): void {
  const keys = new Set(model.stateDict().keys()), seen = new Set<string>();
  const problems: string[] = [];
  for (const r of rs) for (const k of r.ours) {
    if (seen.has(k)) problems.push(`"${k}" is filled twice`);
    else if (!keys.has(k)) problems.push(`"${k}" is not in the model`);
    seen.add(k);
  }
  for (const k of keys) if (!seen.has(k)) problems.push(`"${k}" has no Hugging Face counterpart`);
  if (problems.length) throw new Error(`Hugging Face ${model.cfg.architecture} layout cannot express this config: ${problems.join("; ")}`);
}

/** "transformer." if the checkpoint uses the LM-head model's names, "" if it was saved from the bare model. */
function detectPrefix(source: TensorSource, family: Family): string {
  const p = BASE_PREFIX[family], embed = EMBED[family];
  return !source.has(p + embed) && source.has(embed) ? "" : p;
}

/**
 * Copy an HF checkpoint's weights into model (in place), after checking every name and shape against
 * model.cfg. Throws HFWeightsError listing every missing, unexpected or misshapen tensor, and (unless
 * checkFinite is false) NonFiniteError naming the first tensor that holds NaN or ±Infinity.
 */
export function loadHFWeights(model: HookedTransformer, source: TensorSource, opts: { checkFinite?: boolean } = {}): void {
  const cfg = model.cfg, family = hfFamily(cfg);
  const prefix = detectPrefix(source, family);
  // With tie_word_embeddings HF uses the embedding as the unembedding and ignores any saved copy.
  const rs = rules(cfg, family, prefix, cfg.tie_word_embeddings);
  checkCoverage(model, rs);

  const issues: StateDictIssue[] = [];
  const expected = new Set<string>();
  for (const r of rs) for (const { name, shape } of r.hf) {
    if (expected.has(name)) continue;
    expected.add(name);
    if (!source.has(name)) { issues.push({ code: "missing_key", key: name, message: `missing tensor "${name}" (expected shape ${fmt(shape)})` }); continue; }
    const got = source.info(name).shape;
    if (!shapeEq(got, shape)) issues.push({ code: "shape_mismatch", key: name, expected: shape, got, message: `"${name}": the config implies shape ${fmt(shape)}, the checkpoint has ${fmt(got)}` });
  }
  for (const name of source.names()) {
    if (expected.has(name) || IGNORED[family].test(name) || (cfg.tie_word_embeddings && name === UNEMBED[family])) continue;
    issues.push({ code: "unexpected_key", key: name, message: `unexpected tensor "${name}" (not part of a ${family} model with this config)` });
  }
  if (issues.length) throw new HFWeightsError(source.location, issues);

  const params = model.stateDict();
  noGrad(() => {
    for (const r of rs) {
      const loaded = r.hf.map(({ name }) => source.load(name, { dtype: params.get(r.ours[0]!)!.dtype }));
      if (opts.checkFinite ?? true) r.hf.forEach(({ name }, i) => {
        // One sum on the active backend clears a finite tensor; only a non-finite sum is scanned element by element.
        const at = allFinite(loaded[i]!) ? null : nonFiniteAt(loaded[i]!);
        if (at !== null) throw new NonFiniteError(`${source.location}: tensor "${name}" holds ${at} (load with checkFinite: false to skip this check)`, name);
      });
      const ours = r.toOurs(loaded);
      // The tensors were just read from the file: parameters take their storage instead of a second copy.
      model.loadStateDict(new Map(r.ours.map((k, i) => [k, ours[i]!])), { strict: false, adopt: true });
    }
  });
}

/**
 * The model's weights under their HF names and layouts (what save_pretrained would write). With
 * `tied`, the unembedding is not written (HF rebuilds it from the embedding).
 */
export function hfStateDict(model: HookedTransformer, opts: { tied?: boolean } = {}): Map<string, Tensor> {
  const cfg = model.cfg, family = hfFamily(cfg);
  const rs = rules(cfg, family, BASE_PREFIX[family], opts.tied ?? cfg.tie_word_embeddings);
  checkCoverage(model, rs);
  const sd = model.stateDict(), out = new Map<string, Tensor>();
  noGrad(() => {
    for (const r of rs) {
      if (r.loadOnly) continue;
      const hf = r.toHF(r.ours.map((k) => sd.get(k)!));
      r.hf.forEach(({ name, shape }, i) => {
        const t = hf[i]!;
        if (!shapeEq(t.shape, shape)) throw new Error(`hfStateDict: internal layout error for "${name}": ${fmt(t.shape)} vs ${fmt(shape)}`);
        out.set(name, t);
      });
    }
  });
  return out;
}

/** True when W_U is exactly W_E^T, so the model can be saved with tied embeddings without losing anything. */
export function unembedIsTied(model: HookedTransformer): boolean {
  const sd = model.stateDict();
  const we = sd.get("embed.W_E")!, wu = sd.get("unembed.W_U")!;
  if (sd.has("unembed.b_U")) return false;
  const e = we.contiguous().toArray(), u = wu.contiguous().toArray();
  const [V, D] = we.shape as [number, number];
  for (let v = 0; v < V; v++) for (let d = 0; d < D; d++) if (e[v * D + d] !== u[d * V + v]) return false;
  return true;
}
