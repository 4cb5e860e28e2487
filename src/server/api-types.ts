// The workbench's JSON API, as types shared by the server (src/server/) and the page (src/web/).
// Every route answers JSON; a failure is { error } with a 4xx/5xx status. Values are plain numbers
// from the model's float32 tensors; 2-D arrays are [row][col] with the axes named beside them.

import type { z } from "zod";
import type { TechniqueName, techniques } from "../techniques/index.js";

/** POST /api/<technique>: the body is the technique's input schema (fields with defaults optional)... */
export type TechniqueInput<N extends TechniqueName> = z.input<(typeof techniques)[N]["input"]>;
/** ...and the answer its run()'s result; with ?render=1, { result, text, pictures } (RenderedResult). */
export type TechniqueResult<N extends TechniqueName> = Awaited<ReturnType<(typeof techniques)[N]["run"]>>;
export type { TechniqueName };
export type { TechniqueListing, RenderedResult } from "./technique-routes.js";

export interface Token { id: number; str: string }
export interface TopToken { id: number; str: string; prob: number }

/** GET /api/info */
export interface InfoResponse {
  model: string;
  config: { architecture: string; n_layers: number; n_heads: number; d_model: number; d_vocab: number; n_ctx: number; attn_only: boolean };
  /** Every hook point of the model, in forward order. */
  hookNames: string[];
  /** Longest prompt the server accepts, in tokens. */
  maxTokens: number;
}

/** POST /api/run {prompt, top?}: the next-token predictions at every position. */
export interface RunRequest { prompt: string; top?: number }
export interface RunResponse { tokens: Token[]; predictions: TopToken[][] } // predictions[pos][rank]

/**
 * POST /api/patch: activation patching with the normalised logit difference (0 = corrupted, 1 = clean),
 * or the raw logit difference when metric.illConditioned (|clean − corrupted| < threshold, conditioning.ts).
 * by "pos" (default): layer × position at a residual site (patchByPos); by "head": layer × head at a
 * per-head site, every position (patchByHead).
 */
export type ResidSiteName = "resid_pre" | "resid_mid" | "resid_post" | "attn_out" | "mlp_out";
export type HeadSiteName = "z" | "q" | "k" | "v" | "pattern";
export interface PatchRequest { clean: string; corrupted: string; answer: string; wrong: string; by?: "pos" | "head"; site?: ResidSiteName | HeadSiteName; direction?: "denoising" | "noising" }
export interface PatchResponse {
  clean: Token[]; corrupted: Token[]; answer: Token; wrong: Token;
  by: "pos" | "head"; site: string; direction: string;
  metric: {
    cleanLogitDiff: number; corruptedLogitDiff: number;
    /** false when ill-conditioned: values are then the raw logit difference. */
    normalized: boolean;
    /** |clean − corrupted| < threshold = 1e-6 · max(1, |clean|, |corrupted|): normalising would divide noise by noise. */
    illConditioned: boolean; denominator: number; threshold: number;
  };
  /** Row labels ("0", "1", …) and column labels: position tokens ("clean/corrupted" where they differ) or heads ("0", "1", …). */
  layers: string[]; columns: string[];
  values: number[][]; // [layer][pos or head]
}

export interface ErrorResponse { error: string }
