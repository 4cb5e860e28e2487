// Text ⇄ token helpers with TransformerLens's API (HookedTransformer.to_tokens, to_string,
// to_str_tokens, to_single_token, get_token_position, and utils.test_prompt), written against a
// small Tokenizer interface so the model layer never imports io/: any object with these members
// fits, including io's tokenizer class. This file does not load tokenizers or models.
import { noGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";
import { fmt, ShapeError } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import type { HookedTransformer } from "./transformer.js";

/** What these helpers need from a tokenizer. */
export interface Tokenizer {
  /** Token ids of text; helpers call it with addSpecialTokens: false and add BOS themselves. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[]): string;
  /** The vocabulary entry of an id (e.g. "ĠParis"), if any. */
  idToToken(id: number): string | null | undefined;
  /** e.g. 50256 (<|endoftext|>) for GPT-2; null or undefined when the tokenizer has none. */
  readonly bosTokenId?: number | null;
  readonly eosTokenId?: number | null;
  readonly padTokenId?: number | null;
}

export interface BosOptions {
  /** Put the BOS token first (default: true when the tokenizer has one, as TransformerLens). */
  prependBos?: boolean;
}

export interface ToTokensOptions extends BosOptions {
  /** Where padding goes when texts differ in length (default "right", as TransformerLens; generation wants "left"). */
  paddingSide?: "left" | "right";
}

/** Token ids and which of them are real: both int32 [batch, pos]. */
export interface TokenBatch {
  tokens: Tensor;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Tensor;
}

export class TokenError extends Error {
  override name = "TokenError";
}

function wantsBos(tokenizer: Tokenizer, opts: BosOptions): boolean {
  const has = tokenizer.bosTokenId !== null && tokenizer.bosTokenId !== undefined;
  const want = opts.prependBos ?? has;
  if (want && !has) throw new TokenError("prependBos: the tokenizer has no BOS token");
  return want;
}

/** Ids of one text, with BOS first when asked for (or by default when the tokenizer has one). */
export function encodeText(tokenizer: Tokenizer, text: string, opts: BosOptions = {}): number[] {
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  return wantsBos(tokenizer, opts) ? [tokenizer.bosTokenId!, ...ids] : ids;
}

/** Tokenize one text or several into int32 [batch, pos], padding shorter texts. */
export function toTokens(tokenizer: Tokenizer, input: string | readonly string[], opts: ToTokensOptions = {}): TokenBatch {
  const texts = typeof input === "string" ? [input] : input;
  if (texts.length === 0) throw new TokenError("toTokens: no texts given");
  const rows = texts.map((t) => encodeText(tokenizer, t, opts));
  const T = Math.max(...rows.map((r) => r.length));
  // TransformerLens pads with the pad token, which GPT-2 sets to its EOS.
  const pad = tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
  const left = (opts.paddingSide ?? "right") === "left";
  const tokens = new Int32Array(rows.length * T).fill(pad), mask = new Int32Array(rows.length * T);
  rows.forEach((r, b) => {
    const start = b * T + (left ? T - r.length : 0);
    tokens.set(r, start);
    mask.fill(1, start, start + r.length);
  });
  return { tokens: new Tensor(tokens, [rows.length, T]), attentionMask: new Tensor(mask, [rows.length, T]) };
}

type TokenInput = Tensor | readonly number[];

/** A 1-D token list from a [pos] or [1, pos] tensor or an array. */
function tokenList(tokens: TokenInput, op: string): number[] {
  if (!(tokens instanceof Tensor)) return Array.from(tokens);
  if (tokens.ndim === 1 || (tokens.ndim === 2 && tokens.shape[0] === 1)) return tokens.toList();
  throw new ShapeError(`${op}: expected tokens [pos] or [1, pos], got ${fmt(tokens.shape)}`);
}

/** Decode tokens to text: [pos] or an array gives one string, [batch, pos] or nested arrays one per row. */
export function toString(tokenizer: Tokenizer, tokens: readonly number[]): string;
export function toString(tokenizer: Tokenizer, tokens: readonly (readonly number[])[]): string[];
export function toString(tokenizer: Tokenizer, tokens: Tensor): string | string[];
export function toString(tokenizer: Tokenizer, tokens: Tensor | readonly number[] | readonly (readonly number[])[]): string | string[] {
  if (tokens instanceof Tensor) {
    if (tokens.ndim === 1) return tokenizer.decode(tokens.toList());
    if (tokens.ndim === 2) return (tokens.toNested() as number[][]).map((r) => tokenizer.decode(r));
    throw new ShapeError(`toString: expected tokens [pos] or [batch, pos], got ${fmt(tokens.shape)}`);
  }
  if (tokens.length > 0 && Array.isArray(tokens[0])) return (tokens as readonly (readonly number[])[]).map((r) => tokenizer.decode([...r]));
  return tokenizer.decode([...(tokens as readonly number[])]);
}

/**
 * Each token as the text it decodes to (" Paris", not "ĠParis"), as TransformerLens's
 * to_str_tokens. Text is tokenized first (with BOS by default when the tokenizer has one).
 */
export function toStrTokens(tokenizer: Tokenizer, input: string | TokenInput, opts: BosOptions = {}): string[] {
  const ids = typeof input === "string" ? encodeText(tokenizer, input, opts) : tokenList(input, "toStrTokens");
  return ids.map((id) => tokenizer.decode([id]));
}

/** The id of a string that is exactly one token (no BOS), else a TokenError saying how it splits. */
export function toSingleToken(tokenizer: Tokenizer, text: string): number {
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  if (ids.length !== 1) {
    const parts = ids.map((id) => JSON.stringify(tokenizer.decode([id]))).join(", ");
    throw new TokenError(`${JSON.stringify(text)} is ${ids.length} tokens [${parts}], not a single token`);
  }
  return ids[0]!;
}

/**
 * Index of a single token in the input (text is tokenized with BOS by default, so indices match
 * what the model sees). mode "first" (default) or "last" occurrence; a TokenError when absent.
 */
export function getTokenPosition(tokenizer: Tokenizer, token: string | number, input: string | TokenInput, opts: BosOptions & { mode?: "first" | "last" } = {}): number {
  const id = typeof token === "number" ? token : toSingleToken(tokenizer, token);
  const ids = typeof input === "string" ? encodeText(tokenizer, input, opts) : tokenList(input, "getTokenPosition");
  const pos = (opts.mode ?? "first") === "first" ? ids.indexOf(id) : ids.lastIndexOf(id);
  if (pos < 0) {
    const shown = ids.map((i) => JSON.stringify(tokenizer.decode([i]))).join(" ");
    throw new TokenError(`token ${id} (${JSON.stringify(tokenizer.decode([id]))}) does not occur in the input: ${shown}`);
  }
  return pos;
}

/** One entry of a prediction list. */
export interface TokenPrediction {
  token: number;
  str: string;
  logit: number;
  prob: number;
}

/**
 * The k most likely next tokens from one row of logits [d_vocab] (most likely first, lower id first
 * among ties), and a way to describe any other token of that row.
 */
export function predictions(tokenizer: Tokenizer, logits: ArrayLike<number>, k: number): { top: TokenPrediction[]; prediction: (token: number) => TokenPrediction } {
  let max = -Infinity, sum = 0;
  for (let j = 0; j < logits.length; j++) max = Math.max(max, logits[j]!);
  for (let j = 0; j < logits.length; j++) sum += Math.exp(logits[j]! - max);
  // p_j = exp(l_j - max) / sum_i exp(l_i - max), the softmax without overflow.
  const prediction = (j: number): TokenPrediction => ({ token: j, str: tokenizer.decode([j]), logit: logits[j]!, prob: Math.exp(logits[j]! - max) / sum });
  const order = Array.from({ length: logits.length }, (_, j) => j).sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, k);
  return { top: order.map(prediction), prediction };
}

/** How the model did on one answer token. */
export interface AnswerTokenResult extends TokenPrediction {
  /** Index in the full (prompt + answer) sequence at which this token is predicted. */
  position: number;
  /** 0 = the model's top prediction. */
  rank: number;
  /** The model's top-k predictions at this position, most likely first. */
  top: TokenPrediction[];
}

export interface PromptTest {
  promptStrTokens: string[];
  answerStrTokens: string[];
  answers: AnswerTokenResult[];
}

export interface TestPromptOptions extends BosOptions {
  /** Predictions listed per answer token (default 10). */
  topK?: number;
  /** Put a space before the answer unless it starts with one (default true, as TransformerLens). */
  prependSpaceToAnswer?: boolean;
}

/**
 * How likely the model finds `answer` after `prompt` (TransformerLens's utils.test_prompt): for each
 * answer token, its rank, logit and probability, and the top-k predictions at that position.
 */
export function testPrompt(model: HookedTransformer, tokenizer: Tokenizer, prompt: string, answer: string, opts: TestPromptOptions = {}): PromptTest {
  const k = opts.topK ?? 10;
  if (!(Number.isInteger(k) && k >= 0)) throw new RangeError(`topK must be a non-negative integer, got ${k}`);
  const ans = (opts.prependSpaceToAnswer ?? true) && !answer.startsWith(" ") ? " " + answer : answer;
  const promptIds = encodeText(tokenizer, prompt, opts);
  const answerIds = tokenizer.encode(ans, { addSpecialTokens: false });
  if (promptIds.length === 0) throw new TokenError("testPrompt: the prompt has no tokens");
  if (answerIds.length === 0) throw new TokenError("testPrompt: the answer has no tokens");
  const all = [...promptIds, ...answerIds];
  const P = promptIds.length, V = model.cfg.d_vocab;
  // Logits predicting each answer token: positions P-1 .. P+A-2, copied out of the scope.
  const rows = noGrad(() => scope(() => {
    const logits = model.forward([all]); // [1, pos, d_vocab]
    return answerIds.map((_, i) => logits.select(1, P - 1 + i).toArray() as Float32Array);
  }));
  const answers = answerIds.map((token, i): AnswerTokenResult => {
    const row = rows[i]!;
    const { top, prediction } = predictions(tokenizer, row, k);
    // Rank in the order most likely first, lower id first among ties.
    let rank = 0;
    for (let j = 0; j < V; j++) if (row[j]! > row[token]! || (row[j] === row[token] && j < token)) rank++;
    return { ...prediction(token), position: P - 1 + i, rank, top };
  });
  return { promptStrTokens: promptIds.map((id) => tokenizer.decode([id])), answerStrTokens: answerIds.map((id) => tokenizer.decode([id])), answers };
}

/** testPrompt's result as text laid out like TransformerLens's printout. */
export function formatPromptTest(r: PromptTest): string {
  const q = (s: string) => `|${s}|`;
  const line = (p: TokenPrediction) => `Logit: ${p.logit.toFixed(2).padStart(6)} Prob: ${(p.prob * 100).toFixed(2).padStart(6)}% Token: ${q(p.str)}`;
  const out = [`Tokenized prompt: [${r.promptStrTokens.map((s) => `'${s}'`).join(", ")}]`, `Tokenized answer: [${r.answerStrTokens.map((s) => `'${s}'`).join(", ")}]`];
  for (const a of r.answers) {
    out.push(`Performance on answer token:`, `Rank: ${String(a.rank).padEnd(5)} ${line(a)}`);
    a.top.forEach((p, i) => out.push(`Top ${i}th token. ${line(p)}`));
  }
  out.push(`Ranks of the answer tokens: [${r.answers.map((a) => `('${a.str}', ${a.rank})`).join(", ")}]`);
  return out.join("\n");
}
