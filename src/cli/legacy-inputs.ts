// Snapshot and prompt loading for the CLI commands not yet moved to a technique descriptor (those
// use techniques/inputs.ts, which throws InputError naming the field): here the errors are
// UsageErrors naming the flag. Goes away with the last legacy command.
import { loadPretrained } from "../io/snapshot.js";
import { encodeText, toSingleToken } from "../model/tokens.js";
import { UsageError } from "./args.js";

/** Load a snapshot that has a tokenizer; throws a clear error otherwise. */
export function loadWithTokenizer(folder: string) {
  const loaded = loadPretrained(folder);
  if (!loaded.tokenizer) throw new Error(`${folder} has no tokenizer.json, so a text prompt cannot be tokenized`);
  return { ...loaded, tokenizer: loaded.tokenizer };
}

/** Token ids of a prompt, checked against n_ctx. */
export function promptIds(tokenizer: Parameters<typeof encodeText>[0], prompt: string, nCtx: number, noBos: boolean, what = "the prompt"): number[] {
  const ids = encodeText(tokenizer, prompt, noBos ? { prependBos: false } : {});
  if (ids.length === 0) throw new UsageError(`${what} has no tokens`);
  if (ids.length > nCtx) throw new UsageError(`${what} has ${ids.length} tokens, more than n_ctx = ${nCtx}`);
  return ids;
}

/** A single-token flag value as its id (UsageError naming the flag if it splits). */
export function singleToken(tokenizer: Parameters<typeof toSingleToken>[0], flag: string, text: string): number {
  try { return toSingleToken(tokenizer, text); } catch (e) { throw new UsageError(`--${flag}: ${(e as Error).message}`); }
}
