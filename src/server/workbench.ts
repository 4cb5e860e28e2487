// The analyses behind the workbench's API, on one loaded model: each takes a parsed request body
// (unknown JSON), validates it, runs the library (runWithCache) and returns
// plain data for the page. Invalid input throws ApiError(400) with a message naming the field;
// nothing here knows about HTTP beyond that status. Kept bounded: prompts are capped at maxTokens,
// and patching sweeps (the technique routes) at maxPatchCells runs, so one request cannot hold the server long.
import type { HookedTransformer } from "../model/transformer.js";
import type { Tokenizer } from "../io/tokenizer.js";
import type { ModelConfig } from "../model/config.js";
import type { Subject } from "../techniques/technique.js";
import { noGrad } from "../tensor/autodiff.js";
import { checkHookName, HookNameError, type HookName } from "../model/hooks.js";
import { encodeText } from "../model/tokens.js";
import { topKIndices } from "../tensor/ops/sparse.js";
import { detectionPattern, HEAD_KINDS, scorePattern, type HeadKind } from "../analysis/head-detectors.js";
import type {
  ActivationsResponse, AttentionResponse, InfoResponse, RunResponse, Token, TopToken,
} from "./api-types.js";

/** A client error: the status to answer with and a message for the page. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(readonly status: number, message: string) { super(message); }
}

export interface WorkbenchLimits {
  /** Longest prompt in tokens (default min(n_ctx, 128)). */
  maxTokens?: number;
  /** Most patched runs one sweep (/api/patch, /api/path-patch) may do (n_layers × positions, or × heads; default 2,048). */
  maxPatchCells?: number;
  /** The one folder whose files techniques may read by path (corpora); default none. */
  dataDir?: string;
}

type Body = Record<string, unknown>;

function field(body: Body, name: string, kind: "string"): string;
function field(body: Body, name: string, kind: "integer"): number;
function field(body: Body, name: string, kind: "string" | "integer"): string | number {
  const v = body[name];
  if (v === undefined) throw new ApiError(400, `missing field "${name}"`);
  if (kind === "string" && typeof v !== "string") throw new ApiError(400, `"${name}" must be a string, got ${JSON.stringify(v)}`);
  if (kind === "integer" && !Number.isInteger(v)) throw new ApiError(400, `"${name}" must be an integer, got ${JSON.stringify(v)}`);
  return v as string | number;
}

function optInt(body: Body, name: string, def: number, lo: number, hi: number): number {
  if (body[name] === undefined) return def;
  const v = field(body, name, "integer");
  if (v < lo || v > hi) throw new ApiError(400, `"${name}" must be between ${lo} and ${hi}, got ${v}`);
  return v;
}

/** The analyses of one model; every method takes the request's parsed JSON body. */
export class Workbench {
  readonly maxTokens: number;
  readonly dataDir: string | null;
  readonly maxPatchCells: number;

  constructor(readonly model: HookedTransformer, readonly tokenizer: Tokenizer, readonly cfg: ModelConfig, readonly name: string, limits: WorkbenchLimits = {}) {
    this.maxTokens = Math.min(cfg.n_ctx, limits.maxTokens ?? 128);
    this.dataDir = limits.dataDir ?? null;
    this.maxPatchCells = limits.maxPatchCells ?? 2048;
  }

  info(): InfoResponse {
    const c = this.cfg;
    return {
      model: this.name,
      config: { architecture: c.architecture, n_layers: c.n_layers, n_heads: c.n_heads, d_model: c.d_model, d_vocab: c.d_vocab, n_ctx: c.n_ctx, attn_only: c.attn_only },
      hookNames: [...this.model.hookNames()],
      maxTokens: this.maxTokens,
    };
  }

  /** What the technique routes run on: this model, its tokenizer and the prompt cap. */
  subject(): Subject {
    return { model: this.model, tokenizer: this.tokenizer, name: this.name, maxTokens: this.maxTokens, maxRuns: this.maxPatchCells, files: { root: this.dataDir } };
  }

  /** A prompt's ids (with the tokenizer's BOS, as the CLI commands), checked for length. */
  private ids(text: string, what = "prompt"): number[] {
    let ids: number[];
    try { ids = encodeText(this.tokenizer, text); } catch (e) { throw new ApiError(400, `${what}: ${(e as Error).message}`); }
    if (ids.length === 0) throw new ApiError(400, `${what} has no tokens`);
    if (ids.length > this.maxTokens) throw new ApiError(400, `${what} has ${ids.length} tokens; this server takes at most ${this.maxTokens}`);
    return ids;
  }

  private tokens(ids: readonly number[]): Token[] { return ids.map((id) => ({ id, str: this.tokenizer.decode([id]) })); }
  private top(id: number, prob: number): TopToken { return { id, str: this.tokenizer.decode([id]), prob }; }

  run(body: Body): RunResponse {
    const ids = this.ids(field(body, "prompt", "string"));
    const k = optInt(body, "top", 5, 1, 50);
    const probs = noGrad(() => this.model.forward([ids]).softmax(-1)); // [batch, pos, d_vocab]
    const V = probs.shape[2]!, p = probs.contiguous().toArray();
    const predictions = ids.map((_, pos) => {
      const row = p.subarray(pos * V, (pos + 1) * V);
      return topKIndices(row, k).map((t) => this.top(t, row[t]!));
    });
    return { tokens: this.tokens(ids), predictions };
  }

  attention(body: Body): AttentionResponse {
    const ids = this.ids(field(body, "prompt", "string"));
    const layer = optInt(body, "layer", 0, 0, this.cfg.n_layers - 1);
    const hook = `blocks.${layer}.attn.hook_pattern` as HookName;
    const pattern = noGrad(() => this.model.runWithCache([ids], { names: [hook] }).cache.get(hook)); // [batch, head_index, query_pos, key_pos]
    const [, H, T] = pattern.shape as [number, number, number, number];
    const patterns = Array.from({ length: H }, (_, h) => Array.from({ length: T }, (_, q) => Array.from({ length: T }, (_, k) => pattern.get(0, h, q, k))));
    // The attention command's scoring: TransformerLens's "mul" measure, the BOS column left out when there is one.
    const bos = this.tokenizer.bosTokenId != null && ids[0] === this.tokenizer.bosTokenId;
    const detections = HEAD_KINDS.map((k) => [k, detectionPattern(k, ids)] as const);
    const scores = patterns.map((p) => {
      const flat = p.flat();
      return Object.fromEntries(detections.map(([k, d]) => { const s = scorePattern(flat, d, T, { excludeBos: bos }); return [k, s.rows > 0 ? s.sum / s.rows : null]; })) as Record<HeadKind, number | null>;
    });
    return { tokens: this.tokens(ids), layer, hook, patterns, scores };
  }

  activations(body: Body): ActivationsResponse {
    const prompt = field(body, "prompt", "string"), hook = field(body, "hook", "string");
    try { checkHookName(hook, new Set<string>(this.model.hookNames())); } catch (e) {
      if (e instanceof HookNameError) throw new ApiError(400, e.message);
      throw e;
    }
    const ids = this.ids(prompt);
    const act = noGrad(() => this.model.runWithCache([ids], { names: [hook] }).cache.get(hook)).contiguous();
    const shape = act.shape.slice(1);
    const a = act.toArray();
    const perPattern = hook.endsWith(".hook_pattern") || hook.endsWith(".hook_attn_scores");
    if (perPattern) {
      // [head_index, query_pos, key_pos] → per query position: [head_index × key_pos].
      const [H, T, K] = shape as [number, number, number];
      const values = Array.from({ length: T }, (_, q) => Array.from({ length: H * K }, (_, i) => a[(Math.floor(i / K) * T + q) * K + (i % K)]!));
      return { tokens: this.tokens(ids), hook, shape, axes: ["head_index", "query_pos", "key_pos"], values };
    }
    const T = shape[0]!, D = shape.slice(1).reduce((x, y) => x * y, 1);
    const values = Array.from({ length: T }, (_, t) => Array.from(a.subarray(t * D, (t + 1) * D)));
    const axes = shape.length === 3 ? ["pos", "head_index", "dim"] : ["pos", ...shape.slice(1).map(() => "dim")];
    return { tokens: this.tokens(ids), hook, shape, axes, values };
  }
}
