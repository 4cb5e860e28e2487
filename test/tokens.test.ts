// Token helpers (toTokens, toString, toStrTokens, toSingleToken, getTokenPosition, testPrompt) with a
// small deterministic tokenizer defined here: single characters plus a few merged words, matched
// longest first, and a GPT-2-style special token that is both BOS and EOS.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { makeConfig } from "../src/model/config.js";
import { HookedTransformer } from "../src/model/transformer.js";
import { generate } from "../src/model/generate.js";
import {
  formatPromptTest, getTokenPosition, testPrompt, toSingleToken, toStrTokens, toString, toTokens, TokenError, type Tokenizer,
} from "../src/model/tokens.js";
import { assertClose } from "./helpers.js";

const SPECIAL = "<|endoftext|>";
const VOCAB = [SPECIAL, " Paris", " the", " is", "The", ...Array.from(" abcdefghijklmnopqrstuvwxyz.TEP", (c) => c)];

class CharTokenizer implements Tokenizer {
  readonly bosTokenId: number | null;
  readonly eosTokenId = 0;
  readonly padTokenId: number | null = null;
  constructor(withBos = true) { this.bosTokenId = withBos ? 0 : null; }
  encode(text: string): number[] {
    const ids: number[] = [];
    for (let i = 0; i < text.length;) {
      // Longest vocabulary entry at i (the special token is never produced from text).
      let best = -1;
      VOCAB.forEach((v, id) => { if (id > 0 && text.startsWith(v, i) && (best < 0 || v.length > VOCAB[best]!.length)) best = id; });
      if (best < 0) throw new Error(`no token for ${JSON.stringify(text[i])}`);
      ids.push(best);
      i += VOCAB[best]!.length;
    }
    return ids;
  }
  decode(ids: number[]): string { return ids.map((id) => VOCAB[id]).join(""); }
  idToToken(id: number): string | undefined { return VOCAB[id]?.replace(/ /g, "Ġ"); }
}

const tok = new CharTokenizer();
const id = (s: string) => VOCAB.indexOf(s);

test("toTokens: BOS by default when the tokenizer has one, padding right by default or left", () => {
  const one = toTokens(tok, "The cat");
  assert.deepEqual(one.tokens.toNested(), [[0, id("The"), id(" "), id("c"), id("a"), id("t")]]);
  assert.equal(one.tokens.dtype, "int32");
  assert.deepEqual(one.attentionMask.toNested(), [[1, 1, 1, 1, 1, 1]]);
  assert.deepEqual(toTokens(tok, " the", { prependBos: false }).tokens.toNested(), [[id(" the")]]);
  assert.deepEqual(toTokens(new CharTokenizer(false), " the").tokens.toNested(), [[id(" the")]]);
  assert.throws(() => toTokens(new CharTokenizer(false), "a", { prependBos: true }), TokenError);

  const texts = ["ab", " is the"];
  const right = toTokens(tok, texts);
  // GPT-2 style: no pad token, so padding uses EOS (0).
  assert.deepEqual(right.tokens.toNested(), [[0, id("a"), id("b")], [0, id(" is"), id(" the")]]);
  const r2 = toTokens(tok, ["a", "abc"]);
  assert.deepEqual(r2.tokens.toNested(), [[0, id("a"), 0, 0], [0, id("a"), id("b"), id("c")]]);
  assert.deepEqual(r2.attentionMask.toNested(), [[1, 1, 0, 0], [1, 1, 1, 1]]);
  const left = toTokens(tok, ["a", "abc"], { paddingSide: "left" });
  assert.deepEqual(left.tokens.toNested(), [[0, 0, 0, id("a")], [0, id("a"), id("b"), id("c")]]);
  assert.deepEqual(left.attentionMask.toNested(), [[0, 0, 1, 1], [1, 1, 1, 1]]);
  assert.throws(() => toTokens(tok, []), /no texts/);
});

test("toString decodes one sequence to a string and a batch to one string per row", () => {
  const ids = tok.encode("The cat is");
  assert.equal(toString(tok, ids), "The cat is");
  assert.deepEqual(toString(tok, [ids, tok.encode(" Paris")]), ["The cat is", " Paris"]);
  assert.equal(toString(tok, new cs.Tensor(Int32Array.from(ids), [ids.length])), "The cat is");
  assert.deepEqual(toString(tok, toTokens(tok, ["ab", "c"]).tokens), [`${SPECIAL}ab`, `${SPECIAL}c${SPECIAL}`]);
});

test("toStrTokens splits text (with BOS by default) or tokens into decoded pieces", () => {
  assert.deepEqual(toStrTokens(tok, "The cat is Paris"), [SPECIAL, "The", " ", "c", "a", "t", " is", " Paris"]);
  assert.deepEqual(toStrTokens(tok, " the Pa", { prependBos: false }), [" the", " ", "P", "a"]);
  assert.deepEqual(toStrTokens(tok, [id("The"), id(" Paris")]), ["The", " Paris"]);
  assert.deepEqual(toStrTokens(tok, new cs.Tensor(Int32Array.from([id(" is"), 0]), [1, 2])), [" is", SPECIAL]);
  assert.throws(() => toStrTokens(tok, new cs.Tensor(Int32Array.from([1, 2, 3, 4]), [2, 2])), /\[1, pos\]/);
});

test("toSingleToken and getTokenPosition (first/last; BOS shifts positions; clear error when absent)", () => {
  assert.equal(toSingleToken(tok, " Paris"), id(" Paris"));
  assert.throws(() => toSingleToken(tok, "ab"), /"ab" is 2 tokens \["a", "b"\], not a single token/);
  const prompt = "The a is the a";
  // Tokens: BOS, The, ' ', a, ' is', ' the', ' ', a
  assert.equal(getTokenPosition(tok, "a", prompt), 3);
  assert.equal(getTokenPosition(tok, "a", prompt, { mode: "last" }), 7);
  assert.equal(getTokenPosition(tok, "a", prompt, { prependBos: false }), 2);
  assert.equal(getTokenPosition(tok, id(" is"), prompt), 4);
  assert.equal(getTokenPosition(tok, " the", tok.encode(prompt), { mode: "last" }), 4);
  assert.throws(() => getTokenPosition(tok, " Paris", prompt), (e: Error) =>
    e instanceof TokenError && /token 1 \(" Paris"\) does not occur in the input: "<\|endoftext\|>" "The" " " "a"/.test(e.message));
  assert.throws(() => getTokenPosition(tok, "ab", prompt), /not a single token/);
});

/** A model whose logits are exactly b_U at every position: every weight zero except the unembedding bias. */
function constantModel(bias: number[]): HookedTransformer {
  const m = new HookedTransformer(makeConfig({ architecture: "gpt2", d_model: 8, n_layers: 1, n_heads: 2, d_vocab: VOCAB.length, n_ctx: 32, unembed_bias: true }));
  m.unembed.b_U!.data.set(bias);
  return m;
}

test("testPrompt: rank, logit and probability of each answer token plus the top-k, checked by hand", () => {
  const bias = VOCAB.map(() => 0);
  bias[id(" Paris")] = 3; bias[id("x")] = 5; bias[id("y")] = 3; bias[id("a")] = 1;
  const m = constantModel(bias);
  const r = testPrompt(m, tok, "The cat is", "Paris", { topK: 3 });
  assert.deepEqual(r.promptStrTokens, [SPECIAL, "The", " ", "c", "a", "t", " is"]);
  assert.deepEqual(r.answerStrTokens, [" Paris"]);
  const z = Math.exp(5) + 2 * Math.exp(3) + Math.exp(1) + (VOCAB.length - 4);
  const a = r.answers[0]!;
  assert.equal(a.token, id(" Paris"));
  assert.equal(a.position, 6);
  // Only "x" is above; " Paris" ties with "y" and has the lower id.
  assert.equal(a.rank, 1);
  assertClose([a.logit, a.prob], [3, Math.exp(3) / z], { rtol: 1e-6 });
  assert.deepEqual(a.top.map((p) => p.str), ["x", " Paris", "y"]);
  assertClose(a.top.map((p) => p.prob), [Math.exp(5) / z, Math.exp(3) / z, Math.exp(3) / z], { rtol: 1e-6 });

  // A multi-token answer is scored at consecutive positions; the space is not added twice.
  const r2 = testPrompt(m, tok, "The", " ab", { topK: 1, prependBos: false });
  assert.deepEqual(r2.answerStrTokens, [" ", "a", "b"]);
  assert.deepEqual(r2.answers.map((x) => x.position), [0, 1, 2]);
  // " " and "b" (logit 0) also rank behind the logit-0 tokens of lower id.
  assert.deepEqual(r2.answers.map((x) => x.rank), [8, 3, 9]);
  assert.deepEqual(testPrompt(m, tok, "The", "ab", { prependSpaceToAnswer: false }).answerStrTokens, ["a", "b"]);

  const text = formatPromptTest(r);
  assert.match(text, /^Tokenized prompt: \['<\|endoftext\|>', 'The', ' ', 'c', 'a', 't', ' is'\]$/m);
  assert.match(text, /^Rank: 1 +Logit: +3\.00 Prob: +\d+\.\d\d% Token: \| Paris\|$/m);
  assert.match(text, /^Top 0th token\. Logit: +5\.00 Prob: .*Token: \|x\|$/m);
  assert.match(text, /^Ranks of the answer tokens: \[\(' Paris', 1\)\]$/m);
});

test("testPrompt's probabilities are the model's softmax at the answer positions", () => {
  const m = new HookedTransformer(makeConfig({ architecture: "gpt2", d_model: 16, n_layers: 1, n_heads: 2, d_vocab: VOCAB.length, n_ctx: 32 })).initWeights(3);
  const r = testPrompt(m, tok, "The cat", " is the", { topK: 5 });
  const all = [0, ...tok.encode("The cat"), ...tok.encode(" is the")];
  const probs = cs.noGrad(() => m.forward([all]).softmax(-1));
  r.answers.forEach((a, i) => {
    assert.equal(a.position, 5 + i);
    assertClose([a.prob], [probs.get(0, a.position, a.token)], { rtol: 1e-5 });
    if (a.rank < 5) assert.equal(a.top[a.rank]!.token, a.token);
    for (let j = 1; j < 5; j++) assert.ok(a.top[j - 1]!.prob >= a.top[j]!.prob);
  });
});

test("toTokens with left padding feeds generate like unpadded prompts", () => {
  const m = new HookedTransformer(makeConfig({ architecture: "llama", d_model: 16, n_layers: 1, n_heads: 2, d_vocab: VOCAB.length })).initWeights(5);
  const texts = ["The cat", " the"];
  const { tokens, attentionMask } = toTokens(tok, texts, { paddingSide: "left" });
  const a = generate(m, tokens, { maxNewTokens: 3, doSample: false, attentionMask });
  const b = generate(m, texts.map((t) => [0, ...tok.encode(t)]), { maxNewTokens: 3, doSample: false });
  assert.deepEqual(a.tokens, b.tokens);
});
