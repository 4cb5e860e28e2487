// Inputs every technique shares — the schema fields (a prompt, the BOS switch, a single token) and
// turning them into ids — written once, so the CLI, the API and the page phrase them alike and a
// bad value is an InputError naming its field.
import { z } from "zod";
import { encodeText, toSingleToken, type Tokenizer } from "../model/tokens.js";
import { checkHookName, HookNameError, type HookName } from "../model/hooks.js";
import { InputError, type Subject } from "./technique.js";
import { parseHeads, type HeadRef } from "./heads.js";

export const bosField = z.boolean().default(true).describe("put the tokenizer's BOS token before each prompt");
/** Token ids given directly, so tokenizer-less snapshots work everywhere (used as given: no BOS is added). */
const idList = z.array(z.number().int().min(0)).min(1, "no token ids");
export const promptField = (what = "the prompt") =>
  z.union([z.string().min(1, `${what} is empty`), idList], { error: (iss) => (iss.input === undefined ? "missing: give text or token ids" : "expected text or a list of token ids") })
    .describe(`${what} (text, or token ids such as [1, 403, 407])`);
export const tokenField = (what: string) =>
  z.union([z.string().min(1, `${what} is empty`), z.number().int().min(0)], { error: (iss) => (iss.input === undefined ? "missing: give one token" : "expected one token: text, or its id") }).describe(`${what} (one token: text such as " Paris", or its id, [1234] on the CLI)`);

/** The subject's tokenizer; InputError naming the field when the snapshot has none. */
export function tokenizerOf(s: Subject, field: string): Tokenizer {
  if (!s.tokenizer) throw new InputError(field, `${s.name} has no tokenizer.json, so "${field}" (text) cannot be tokenized`);
  return s.tokenizer;
}

/** An id the model's vocabulary has; InputError naming the field otherwise. */
function checkedId(s: Subject, field: string, id: number): number {
  if (id >= s.model.cfg.d_vocab) throw new InputError(field, `token id ${id} is outside the vocabulary (d_vocab = ${s.model.cfg.d_vocab})`);
  return id;
}

/** Token ids of a prompt (text: BOS first unless bos is false; ids: as given); checked to be non-empty and to fit n_ctx. */
export function promptIds(s: Subject, field: string, text: string | readonly number[], bos: boolean): number[] {
  let ids: number[];
  if (typeof text !== "string") ids = text.map((id) => checkedId(s, field, id));
  else {
    const tok = tokenizerOf(s, field);
    try { ids = encodeText(tok, text, bos ? {} : { prependBos: false }); } catch (e) { throw new InputError(field, (e as Error).message); }
  }
  if (ids.length === 0) throw new InputError(field, `"${field}" has no tokens`);
  const nCtx = s.model.cfg.n_ctx, cap = Math.min(nCtx, s.maxTokens ?? nCtx);
  if (ids.length > cap) throw new InputError(field, `"${field}" has ${ids.length} tokens, more than ${cap === nCtx ? `n_ctx = ${nCtx}` : `this server's limit of ${cap}`}`);
  return ids;
}

/** A one-token text (or an id) as its id; InputError naming the field when it splits into several. */
export function singleToken(s: Subject, field: string, text: string | number): number {
  if (typeof text === "number") return checkedId(s, field, text);
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

/** "all" or "L.H,L.H" as heads, checked against the model's shape; InputError naming the field. */
export function headList(s: Subject, field: string, text: string): HeadRef[] {
  return parseHeads(field, text, s.model.cfg.n_layers, s.model.cfg.n_heads);
}

/** A hook point of the model; InputError naming the field and the nearest names when it is not one. */
export function hookOf(s: Subject, field: string, name: string): HookName {
  try { checkHookName(name, new Set<string>(s.model.hookNames())); } catch (e) {
    if (e instanceof HookNameError) throw new InputError(field, e.message);
    throw e;
  }
  return name;
}

/** A layer index of the model; InputError naming the field when it is out of range. */
export function layerOf(s: Subject, field: string, layer: number): number {
  const L = s.model.cfg.n_layers;
  if (layer >= L) throw new InputError(field, `must be between 0 and ${L - 1}, got ${layer}`);
  return layer;
}
