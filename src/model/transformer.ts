// HookedTransformer: embeddings, blocks and unembedding, with a hook point on every activation.
// forward() runs the model; runWithHooks() runs it with hooks that are removed afterwards even when
// something throws; runWithCache() records activations. Grad mode follows the engine's global
// switch (wrap calls in noGrad for inference).
import { Module, ModuleList } from "../nn/module.js";
import { Rng } from "../tensor/rng.js";
import { randn } from "../tensor/create.js";
import { noGrad } from "../tensor/autodiff.js";
import { crossEntropy } from "../tensor/ops/nn.js";
import { prepack } from "../tensor/ops/linalg.js";
import { slice } from "../tensor/ops/movement.js";
import { fmt, ShapeError } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { ActivationCache } from "./cache.js";
import { validateConfig, type ModelConfig } from "./config.js";
import { Embed, Norm, PosEmbed, Unembed, type ForwardContext, type KVCache } from "./components.js";
import { TransformerBlock } from "./block.js";
import { HookRuntime } from "./hook-runtime.js";
import { HookRegistry, matchesFilter, type BackwardHook, type ForwardHook, type HookName, type NamesFilter } from "./hooks.js";
import { checkedLogits, indexString } from "./finite.js";
import { generate, type GenerateOptions, type GenerateResult } from "./generate.js";
import { encodeText, toSingleToken, toStrTokens, toString, toTokens, TokenError, type BosOptions, type Tokenizer, type ToTokensOptions } from "./tokens.js";

export type Tokens = Tensor | readonly number[] | readonly (readonly number[])[] | Int32Array;

export interface ForwardOptions {
  /**
   * [batch, key_pos] with 1 for real tokens and 0 for padding, on either side: padded keys are masked,
   * and positions count real tokens only (Hugging Face's cumsum(mask) − 1, padding at 0), so a padded
   * prompt gives its unpadded logits at its real positions; loss() skips padded targets.
   */
  attentionMask?: Tensor;
  /**
   * Explicit positions [batch, pos] of the tokens this call runs (packed sequences, custom offsets), as
   * Hugging Face's position_ids; they override the positions derived from attentionMask or the KV cache.
   */
  positionIds?: Tensor;
  /** Reuse and extend these keys/values (generation). */
  kvCache?: KVCache;
  /** Unembed only the last position, giving logits [batch, 1, d_vocab] (generation needs no others). */
  lastPositionOnly?: boolean;
  /**
   * Check the logits for NaN/Inf (one pass) and, if any, rerun to name the first hook point that holds
   * one (NonFiniteError). Default: the model's checkFinite, which is true.
   */
  checkFinite?: boolean;
}

export interface Hooks {
  fwd?: readonly (readonly [NamesFilter, ForwardHook])[];
  bwd?: readonly (readonly [NamesFilter, BackwardHook])[];
}

/** A padding score low enough to vanish in softmax yet finite, so a fully padded row gives no NaN. */
const PAD_SCORE = -1e9;

export class HookedTransformer extends Module {
  readonly rt = new HookRuntime();
  readonly embed: Embed;
  readonly pos_embed: PosEmbed | null;
  readonly blocks: ModuleList<TransformerBlock>;
  readonly ln_final: Norm | null;
  readonly unembed: Unembed;
  /** Default of ForwardOptions.checkFinite: every forward checks its logits for NaN/Inf. */
  checkFinite = true;
  /** The tokenizer the text methods (toTokens, toStrTokens, toString, generate on text) use; loadPretrained sets it. */
  tokenizer: Tokenizer | null = null;

  constructor(readonly cfg: ModelConfig) {
    super();
    validateConfig(cfg);
    this.embed = this.child("embed", new Embed(cfg, this.rt));
    this.pos_embed = cfg.positional_embedding_type === "standard" ? this.child("pos_embed", new PosEmbed(cfg, this.rt)) : null;
    this.blocks = this.child("blocks", new ModuleList(Array.from({ length: cfg.n_layers }, (_, l) => new TransformerBlock(cfg, this.rt, l))));
    this.ln_final = cfg.normalization_type !== null ? this.child("ln_final", new Norm(cfg, this.rt, "ln_final")) : null;
    this.unembed = this.child("unembed", new Unembed(cfg));
  }

  /** Every hook point, in forward order. */
  hookNames(): readonly HookName[] { return this.rt.names; }

  /** GPT-2-style initialisation: weights ~ N(0, 0.02²), output projections scaled by 1/sqrt(2 n_layers), biases 0, norm weights 1. */
  initWeights(seed = 0): this {
    const rng = new Rng(seed);
    noGrad(() => {
      for (const [name, p] of this.namedParameters()) {
        const leaf = name.split(".").pop()!;
        if (leaf.startsWith("b") || leaf === "w") continue; // zeros / ones from construction
        const std = leaf === "W_O" || leaf === "W_out" ? 0.02 / Math.sqrt(2 * this.cfg.n_layers) : 0.02;
        p.data.set(randn(p.shape, { rng, std, dtype: p.dtype }).data);
        p.version++;
      }
    });
    return this;
  }

  /**
   * Pack every weight that feeds a matrix product (W_Q, W_K, W_V, W_O, W_in, W_gate, W_out, W_U) for the
   * active backend, once, so inference never packs on the fly. Loading a snapshot does this; a weight
   * changed later (training, weight processing) is repacked on its next use. Returns how many were packed.
   */
  packWeights(): number {
    let n = 0;
    for (const [name, p] of this.namedParameters()) {
      if (/\.(W_Q|W_K|W_V|W_O|W_in|W_gate|W_out|W_U)$/.test(name) && prepack(p)) n++;
    }
    return n;
  }

  /** Tokens as an int32 [batch, pos] tensor. */
  toTokenTensor(tokens: Tokens): Tensor {
    if (tokens instanceof Tensor) {
      if (tokens.ndim !== 1 && tokens.ndim !== 2) throw new ShapeError(`tokens must be [batch, pos] or [pos], got ${fmt(tokens.shape)}`);
      const shape = tokens.ndim === 1 ? [1, tokens.shape[0]!] : tokens.shape;
      // Checked before the cast, which would turn NaN into 0 and 2.5 into 2 silently.
      checkTokenIds(tokens.toArray(), shape, this.cfg.d_vocab);
      const t = tokens.dtype === "int32" ? tokens : tokens.cast("int32");
      return t.ndim === 1 ? t.reshape(shape) : t;
    }
    const rows = (Array.isArray(tokens[0]) ? tokens : [tokens]) as readonly (readonly number[])[];
    const T = rows[0]?.length ?? 0;
    if (rows.some((r) => r.length !== T)) throw new ShapeError("tokens: rows of unequal length; pad them and pass an attentionMask");
    const data = new Int32Array(rows.length * T);
    rows.forEach((r, i) => {
      checkTokenIds(r, [1, T], this.cfg.d_vocab, i);
      data.set(r, i * T);
    });
    return new Tensor(data, [rows.length, T]);
  }

  private context(B: number, T: number, opts: ForwardOptions): ForwardContext {
    const past = opts.kvCache?.keys[0]?.shape[1] ?? 0;
    const positions = new Int32Array(B * T);
    let keyMask: Tensor | null = null;
    const m = opts.attentionMask;
    if (m) {
      const Tk = past + T;
      if (m.ndim !== 2 || m.shape[0] !== B || m.shape[1] !== Tk) throw new ShapeError(`attentionMask must be [batch, key_pos] = [${B}, ${Tk}], got ${fmt(m.shape)}`);
      const md = m.contiguous().toArray();
      const bias = new Float32Array(B * Tk);
      for (let b = 0; b < B; b++) {
        // Positions count real tokens only, so a left-padded prompt starts at position 0.
        let seen = 0;
        for (let j = 0; j < Tk; j++) {
          const real = md[b * Tk + j] !== 0;
          if (!real) bias[b * Tk + j] = PAD_SCORE;
          if (j >= past) positions[b * T + j - past] = real ? seen : 0;
          if (real) seen++;
        }
      }
      keyMask = new Tensor(bias, [B, 1, 1, Tk]);
    } else {
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = past + t;
    }
    if (opts.positionIds) positions.set(positionIds(opts.positionIds, B, T));
    return { positions, keyMask, kvCache: opts.kvCache ?? null };
  }

  /** The residual stream entering block 0: [batch, pos, d_model]. */
  private embedTokens(tokens: Tensor, ctx: ForwardContext): Tensor {
    const [B] = tokens.shape as [number, number];
    const e = this.embed.forward(tokens);
    return this.pos_embed ? e.add(this.pos_embed.forward(ctx.positions, B)) : e;
  }

  /** Logits [batch, pos, d_vocab] for tokens [batch, pos]. */
  forward(tokens: Tokens, opts: ForwardOptions = {}): Tensor {
    const toks = this.toTokenTensor(tokens);
    const [B, T] = toks.shape as [number, number];
    if (T === 0) throw new ShapeError("forward: empty token sequence");
    const ctx = this.context(B, T, opts);
    return checkedLogits(this, opts, () => this.runFrom(0, this.embedTokens(toks, ctx), ctx, opts), "forward");
  }

  /**
   * Logits from the residual stream entering block `layer` (resid [batch, pos, d_model], as cached at
   * `blocks.{layer}.hook_resid_pre`; layer = n_layers means after the last block): runs only
   * blocks[layer..], ln_final and the unembedding, so activation patching skips the blocks a patch
   * cannot change. Hooks from block `layer` on fire as in forward; embedding and earlier ones do not.
   */
  forwardFrom(layer: number, resid: Tensor, opts: ForwardOptions = {}): Tensor {
    const L = this.cfg.n_layers;
    if (!Number.isInteger(layer) || layer < 0 || layer > L) throw new RangeError(`forwardFrom: layer ${layer} is outside [0, ${L}]`);
    if (resid.ndim !== 3 || resid.shape[2] !== this.cfg.d_model) throw new ShapeError(`forwardFrom: resid must be [batch, pos, d_model = ${this.cfg.d_model}], got ${fmt(resid.shape)}`);
    const [B, T] = resid.shape as [number, number, number];
    const ctx = this.context(B, T, opts);
    return checkedLogits(this, opts, () => this.runFrom(layer, resid, ctx, opts), `forwardFrom(${layer})`);
  }

  private runFrom(layer: number, resid: Tensor, ctx: ForwardContext, opts: ForwardOptions): Tensor {
    const T = resid.shape[1]!;
    for (let l = layer; l < this.cfg.n_layers; l++) resid = this.blocks.items[l]!.forward(resid, ctx);
    if (this.ln_final) resid = this.ln_final.forward(resid);
    // After ln_final, so its hooks still see every position.
    if (opts.lastPositionOnly) resid = slice(resid, 1, T - 1, T); // [batch, 1, d_model]
    const logits = this.unembed.forward(resid);
    // Gemma 2's final soft cap: logits = cap · tanh(logits / cap).
    const cap = this.cfg.output_logits_soft_cap;
    return cap === null ? logits : logits.mul(1 / cap).tanh().mul(cap);
  }

  /**
   * Mean next-token cross-entropy of the model on tokens [batch, pos]. With an attentionMask, position t
   * counts only when tokens t and t + 1 are both real (TransformerLens's lm_cross_entropy_loss; Hugging
   * Face's labels = -100 at padding agree for right padding), so a padded batch gives the mean over the
   * real targets of its unpadded sequences.
   */
  loss(tokens: Tokens, opts: ForwardOptions = {}): Tensor {
    const toks = this.toTokenTensor(tokens);
    if (opts.lastPositionOnly) throw new Error("loss: lastPositionOnly leaves no logits to predict the next tokens with");
    const logits = this.forward(toks, opts);
    const [B, T] = toks.shape as [number, number];
    const targets = slice(toks, 1, 1, T).contiguous();
    const m = opts.attentionMask;
    if (!m) return crossEntropy(slice(logits, 1, 0, T - 1), targets);
    // The mask may cover cached keys too: its last T columns are this call's tokens.
    const md = m.contiguous().toArray(), Tk = m.shape[1]!, off = Tk - T;
    const tgt = Int32Array.from(targets.toArray());
    let count = 0;
    for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) {
      const real = md[b * Tk + off + t] !== 0 && md[b * Tk + off + t + 1] !== 0;
      if (real) count++; else tgt[b * (T - 1) + t] = -1;
    }
    if (count === 0) throw new RangeError("loss: the attentionMask leaves no position whose token and next token are both real");
    return crossEntropy(slice(logits, 1, 0, T - 1), new Tensor(tgt, [B, T - 1]), { ignoreIndex: -1 });
  }

  /** Run fn with hooks attached; they are removed afterwards, even if fn throws. */
  withHooks<T>(hooks: Hooks, fn: () => T): T {
    if (this.rt.registry) throw new Error("withHooks: hooks are already active on this model (nested runs are not supported)");
    const reg = new HookRegistry();
    const rt: HookRuntime = this.rt;
    const add = <H>(list: readonly (readonly [NamesFilter, H])[] | undefined, put: (n: HookName, h: H) => void) => {
      for (const [filter, h] of list ?? []) {
        if (typeof filter === "string") rt.check(filter);
        else if (Array.isArray(filter)) filter.forEach((n: string) => rt.check(n));
        let any = false;
        for (const n of this.rt.names) if (matchesFilter(filter, n)) { put(n, h); any = true; }
        if (!any && typeof filter === "function") throw new Error("withHooks: the names filter matches no hook point");
      }
    };
    add(hooks.fwd, (n, h) => reg.addForward(n, h));
    add(hooks.bwd, (n, h) => reg.addBackward(n, h));
    this.rt.registry = reg;
    try { return fn(); } finally { this.rt.registry = null; }
  }

  runWithHooks(tokens: Tokens, hooks: Hooks, opts: ForwardOptions = {}): Tensor {
    return this.withHooks(hooks, () => this.forward(tokens, opts));
  }

  /** Logits plus every activation whose name passes the filter (all by default). */
  /**
   * Logits plus every activation whose name passes the filter. The default caches everything except
   * the per-head results `attn.hook_result` ([batch, pos, head_index, d_model], n_heads times the
   * size of attn_out): as in TransformerLens, those are computed only when asked for by name, and
   * ActivationCache.stackHeadResults rebuilds them from hook_z when needed.
   */
  runWithCache(tokens: Tokens, opts: ForwardOptions & { names?: NamesFilter } = {}): { logits: Tensor; cache: ActivationCache } {
    const acts = new Map<HookName, Tensor>();
    const store: ForwardHook = (a, ctx) => { acts.set(ctx.name, a.detach()); };
    const names = opts.names ?? ((n: HookName) => !n.endsWith(".attn.hook_result"));
    const logits = this.withHooks({ fwd: [[names, store]] }, () => this.forward(tokens, opts));
    return { logits, cache: new ActivationCache(acts, this.rt.known, this) };
  }

  // ---- TransformerLens's text conveniences (HookedTransformer.to_tokens, to_str_tokens, to_string, generate) ----

  private needTokenizer(op: string): Tokenizer {
    if (!this.tokenizer) throw new TokenError(`${op}: the model has no tokenizer (set model.tokenizer, or load a snapshot folder with tokenizer.json)`);
    return this.tokenizer;
  }

  /** Text (or texts, right padded) as int32 [batch, pos], BOS first when the tokenizer has one; cs.toTokens also returns the attention mask. */
  toTokens(input: string | readonly string[], opts: ToTokensOptions = {}): Tensor {
    return toTokens(this.needTokenizer("toTokens"), input, opts).tokens;
  }

  /** Each token as the text it decodes to (" Paris"); text is tokenized first, BOS included by default. */
  toStrTokens(input: string | Tensor | readonly number[], opts: BosOptions = {}): string[] {
    return toStrTokens(this.needTokenizer("toStrTokens"), input, opts);
  }

  /** Token ids back to text ([pos] or a list); [batch, pos] rows are joined by newlines (cs.toString returns them apart). */
  override toString(tokens?: Tensor | readonly number[]): string {
    // Called without arguments (String(model), template literals) it describes the model.
    if (tokens === undefined) return `HookedTransformer(${this.cfg.architecture}, ${this.cfg.n_layers} layers, d_model ${this.cfg.d_model})`;
    const out = toString(this.needTokenizer("toString"), tokens as Tensor);
    return Array.isArray(out) ? out.join("\n") : out;
  }

  /** The id of a string that is exactly one token. */
  toSingleToken(text: string): number {
    return toSingleToken(this.needTokenizer("toSingleToken"), text);
  }

  /**
   * Continue a prompt: text (tokenized with BOS by default) or token ids, greedy (doSample: false or
   * temperature 0) or seeded sampling with temperature, topK and topP (see generate.ts). Stops at the
   * tokenizer's EOS unless eosTokenId says otherwise. `text` holds each sequence decoded when the
   * model has a tokenizer (null otherwise).
   */
  generate(input: string | readonly string[] | Tensor | readonly number[] | readonly (readonly number[])[], opts: GenerateOptions & BosOptions): GenerateResult & { text: string[] | null } {
    const tok = this.tokenizer;
    const texts = typeof input === "string" ? [input] : Array.isArray(input) && typeof input[0] === "string" ? (input as readonly string[]) : null;
    const prompts = texts ? texts.map((t) => encodeText(this.needTokenizer("generate"), t, opts)) : (input as Tensor | readonly number[] | readonly (readonly number[])[]);
    const eosTokenId = opts.eosTokenId ?? tok?.eosTokenId ?? undefined;
    const r = generate(this, prompts, { ...opts, eosTokenId });
    return { ...r, text: tok ? r.tokens.map((t) => tok.decode(t)) : null };
  }
}

/** Throw a RangeError naming the first id in values (rows of a [batch, pos] shape) that is NaN, not an integer, negative or ≥ d_vocab. */
export function checkTokenIds(values: ArrayLike<number>, shape: readonly number[], d_vocab: number, row0 = 0): void {
  const T = shape[shape.length - 1] ?? 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= d_vocab) {
      const where = T ? `[${row0 + Math.floor(i / T)}, ${i % T}]` : `${i}`;
      throw new RangeError(`token ${v} at ${where} is outside the vocabulary [0, ${d_vocab})${Number.isInteger(v) ? "" : " (token ids must be integers)"}`);
    }
  }
}

/** positionIds as [batch * pos] int32, checked: shape [batch, pos] and non-negative integers. */
function positionIds(p: Tensor, B: number, T: number): Int32Array {
  if (p.ndim !== 2 || p.shape[0] !== B || p.shape[1] !== T) throw new ShapeError(`positionIds must be [batch, pos] = [${B}, ${T}], got ${fmt(p.shape)}`);
  const v = p.toArray();
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (!Number.isInteger(x) || x < 0) throw new RangeError(`positionIds: ${x} at ${indexString(i, p.shape)} is not a non-negative integer`);
  }
  return Int32Array.from(v);
}
