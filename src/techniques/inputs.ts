// Inputs every technique shares — the schema fields (a prompt, the BOS switch, a single token) and
// turning them into ids — written once, so the CLI, the API and the page phrase them alike and a
// bad value is an InputError naming its field.
import { z } from "zod";
import { encodeText, toSingleToken, type Tokenizer } from "../model/tokens.js";
import { InputError, type Subject } from "./technique.js";

export const bosField = z.boolean().default(true).describe("put the tokenizer's BOS token before each prompt");
export const promptField = (what = "the prompt") => z.string().min(1, `${what} is empty`).describe(what);
export const tokenField = (what: string) => z.string().min(1, `${what} is empty`).describe(`${what} (one token, e.g. " Paris")`);

/** The subject's tokenizer; InputError naming the field when the snapshot has none. */
export function tokenizerOf(s: Subject, field: string): Tokenizer {
  if (!s.tokenizer) throw new InputError(field, `${s.name} has no tokenizer.json, so "${field}" (text) cannot be tokenized`);
  return s.tokenizer;
}

/** Token ids of a prompt, BOS first unless bos is false; checked to be non-empty and to fit n_ctx. */
export function promptIds(s: Subject, field: string, text: string, bos: boolean): number[] {
  const tok = tokenizerOf(s, field);
  let ids: number[];
  try { ids = encodeText(tok, text, bos ? {} : { prependBos: false }); } catch (e) { throw new InputError(field, (e as Error).message); }
  if (ids.length === 0) throw new InputError(field, `"${field}" has no tokens`);
  const nCtx = s.model.cfg.n_ctx, cap = Math.min(nCtx, s.maxTokens ?? nCtx);
  if (ids.length > cap) throw new InputError(field, `"${field}" has ${ids.length} tokens, more than ${cap === nCtx ? `n_ctx = ${nCtx}` : `this server's limit of ${cap}`}`);
  return ids;
}

/** A one-token text as its id; InputError naming the field when it splits into several. */
export function singleToken(s: Subject, field: string, text: string): number {
  try { return toSingleToken(tokenizerOf(s, field), text); } catch (e) { throw new InputError(field, (e as Error).message); }
}

/** Each id with its decoded text, as results list tokens. */
export function tokenList(s: Subject, ids: readonly number[]): { id: number; str: string }[] {
  const tok = s.tokenizer;
  return ids.map((id) => ({ id, str: tok ? tok.decode([id]) : String(id) }));
}

/** A token as shown on an axis: spaces and newlines visible. */
export const shownToken = (s: string) => s.replace(/ /g, "·").replace(/\n/g, "↵");

/** Rows of a 2-D tensor-like as nested arrays. */
export function rows2d(get: (r: number, c: number) => number, R: number, C: number): number[][] {
  return Array.from({ length: R }, (_, r) => Array.from({ length: C }, (_, c) => get(r, c)));
}
