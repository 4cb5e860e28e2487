// The analyses behind the workbench's API, on one loaded model: each takes a parsed request body
// (unknown JSON), validates it, runs the library (forward) and returns
// plain data for the page. Invalid input throws ApiError(400) with a message naming the field;
// nothing here knows about HTTP beyond that status. Kept bounded: prompts are capped at maxTokens,
// and patching sweeps (the technique routes) at maxPatchCells runs, so one request cannot hold the server long.
import type { HookedTransformer } from "../model/transformer.js";
import type { Tokenizer } from "../io/tokenizer.js";
import type { ModelConfig } from "../model/config.js";
import type { Subject } from "../techniques/technique.js";
import { noGrad } from "../tensor/autodiff.js";
import { encodeText } from "../model/tokens.js";
import { topKIndices } from "../tensor/ops/sparse.js";
import type {
  InfoResponse, RunResponse, Token, TopToken,
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
}
