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

export interface ErrorResponse { error: string }
