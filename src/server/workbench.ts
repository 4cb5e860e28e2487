// The analyses behind the workbench's API, on one loaded model: each takes a parsed request body
// (unknown JSON), validates it, runs the library (forward, patchByPos) and returns
// plain data for the page. Invalid input throws ApiError(400) with a message naming the field;
// nothing here knows about HTTP beyond that status. Kept bounded: prompts are capped at maxTokens,
// and patching at maxPatchCells layer × position cells, so one request cannot hold the server long.
import type { HookedTransformer } from "../model/transformer.js";
import type { Tokenizer } from "../io/tokenizer.js";
import type { ModelConfig } from "../model/config.js";
import type { Subject } from "../techniques/technique.js";
import { noGrad } from "../tensor/autodiff.js";
import { encodeText, toSingleToken } from "../model/tokens.js";
import { topKIndices } from "../tensor/ops/sparse.js";
import { patchByHead, patchByPos, type Direction, type HeadSite, type ResidSite } from "../analysis/patching.js";
import { logitDiffMetric, normalizedMetric } from "../analysis/patching-metrics.js";
import { spanConditioning } from "../analysis/conditioning.js";
import type {
  InfoResponse, PatchResponse, RunResponse, Token, TopToken,
} from "./api-types.js";

/** A client error: the status to answer with and a message for the page. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(readonly status: number, message: string) { super(message); }
}

const RESID_SITES: readonly ResidSite[] = ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"];
const HEAD_SITES: readonly HeadSite[] = ["z", "q", "k", "v", "pattern"];

export interface WorkbenchLimits {
  /** Longest prompt in tokens (default min(n_ctx, 128)). */
  maxTokens?: number;
  /** Most patched runs one /api/patch may do (n_layers × positions, or × heads; default 2,048). */
  maxPatchCells?: number;
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
  readonly maxPatchCells: number;

  constructor(readonly model: HookedTransformer, readonly tokenizer: Tokenizer, readonly cfg: ModelConfig, readonly name: string, limits: WorkbenchLimits = {}) {
    this.maxTokens = Math.min(cfg.n_ctx, limits.maxTokens ?? 128);
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
    return { model: this.model, tokenizer: this.tokenizer, name: this.name, maxTokens: this.maxTokens };
  }

  /** A prompt's ids (with the tokenizer's BOS, as the CLI commands), checked for length. */
  private ids(text: string, what = "prompt"): number[] {
    let ids: number[];
    try { ids = encodeText(this.tokenizer, text); } catch (e) { throw new ApiError(400, `${what}: ${(e as Error).message}`); }
    if (ids.length === 0) throw new ApiError(400, `${what} has no tokens`);
    if (ids.length > this.maxTokens) throw new ApiError(400, `${what} has ${ids.length} tokens; this server takes at most ${this.maxTokens}`);
    return ids;
  }

  /** A field that must be one token (e.g. " Mary") as its id. */
  private single(body: Body, name: string): number {
    const text = field(body, name, "string");
    try { return toSingleToken(this.tokenizer, text); } catch (e) { throw new ApiError(400, `"${name}": ${(e as Error).message}`); }
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

  patch(body: Body): PatchResponse {
    const clean = this.ids(field(body, "clean", "string"), "the clean prompt");
    const corrupted = this.ids(field(body, "corrupted", "string"), "the corrupted prompt");
    const by = body.by ?? "pos";
    if (by !== "pos" && by !== "head") throw new ApiError(400, `"by" must be pos or head, got ${JSON.stringify(body.by)}`);
    const site = (body.site ?? (by === "pos" ? "resid_pre" : "z")) as ResidSite | HeadSite;
    const sites: readonly string[] = by === "pos" ? RESID_SITES : HEAD_SITES;
    if (!sites.includes(site)) throw new ApiError(400, `"site" for by ${by} must be one of ${sites.join(", ")}, got ${JSON.stringify(body.site)}`);
    if (site === "mlp_out" && this.cfg.attn_only) throw new ApiError(400, `"site" mlp_out: an attention-only model has no MLPs`);
    const direction = (body.direction ?? "denoising") as Direction;
    if (direction !== "denoising" && direction !== "noising") throw new ApiError(400, `"direction" must be denoising or noising, got ${JSON.stringify(body.direction)}`);
    const cleanToks = this.tokens(clean), corruptedToks = this.tokens(corrupted);
    if (clean.length !== corrupted.length)
      throw new ApiError(400, `the clean and corrupted prompts must have the same number of tokens: clean has ${clean.length} ${JSON.stringify(cleanToks.map((t) => t.str))}, corrupted has ${corrupted.length} ${JSON.stringify(corruptedToks.map((t) => t.str))}`);
    const answer = this.single(body, "answer"), wrong = this.single(body, "wrong");
    const cols = by === "pos" ? clean.length : this.cfg.n_heads;
    const cells = this.cfg.n_layers * cols;
    if (cells > this.maxPatchCells) throw new ApiError(400, `patching ${this.cfg.n_layers} layers × ${cols} ${by === "pos" ? "positions" : "heads"} = ${cells} runs; this server does at most ${this.maxPatchCells}`);
    const base = logitDiffMetric([answer, wrong]);
    const cleanLd = noGrad(() => base.compute(this.model.forward([clean])).item());
    const corruptedLd = noGrad(() => base.compute(this.model.forward([corrupted])).item());
    // A ~0 gap would make the normalised values noise: the response flags it and carries the raw logit difference.
    const cond = spanConditioning(cleanLd, corruptedLd);
    const positions = cleanToks.map((t, i) => (t.str === corruptedToks[i]!.str ? t.str : `${t.str}/${corruptedToks[i]!.str}`));
    const o = { clean: [clean], corrupted: [corrupted], metric: cond.illConditioned ? base : normalizedMetric(base, cleanLd, corruptedLd), direction, posLabels: positions };
    const r = by === "pos" ? patchByPos(this.model, { ...o, site: site as ResidSite }) : patchByHead(this.model, { ...o, site: site as HeadSite });
    const [L, P] = r.values.shape as [number, number];
    return {
      clean: cleanToks, corrupted: corruptedToks, answer: this.tokens([answer])[0]!, wrong: this.tokens([wrong])[0]!,
      by, site, direction,
      metric: { cleanLogitDiff: cleanLd, corruptedLogitDiff: corruptedLd, normalized: !cond.illConditioned, illConditioned: cond.illConditioned, denominator: cond.denominator, threshold: cond.threshold },
      layers: r.axes[0]!.labels, columns: r.axes[1]!.labels,
      values: Array.from({ length: L }, (_, l) => Array.from({ length: P }, (_, p) => r.values.get(l, p))),
    };
  }
}
