// TransformerLens parity: fromPretrained processes weights as HookedTransformer.from_pretrained does by
// default and leaves the model's predictions unchanged; the processed weights have the folded form
// TransformerLens documents (LayerNorm weights 1 and biases 0, writing weights and the unembedding
// centred, value biases 0); getActName, cache.get shorthand and stackActivation against their
// definitions; the model's toTokens/toStrTokens/generate methods against the functions they wrap.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as cs from "../src/index.js";
import type { HookedTransformer } from "../src/model/transformer.js";
import { assertBitwiseEqual, assertClose, maxAbsDiff, randomModel, randomTokens } from "./model-fixtures.js";
import { noTinyGpt2, tinyGpt2 } from "./cli-helpers.js";

type Tensor = cs.Tensor;
const logits = (m: HookedTransformer, toks: number[][]) => cs.noGrad(() => m.forward(toks));
const logProbs = (t: Tensor) => cs.noGrad(() => t.logSoftmax(-1));
/** Logits minus their mean over the vocabulary: what centring the unembedding leaves unchanged. */
const centred = (t: Tensor) => cs.noGrad(() => t.sub(t.mean(-1, true)));
/** The largest |mean| of t over one axis. */
const maxMean = (t: Tensor, axis: number) => Math.max(...Array.from(cs.noGrad(() => t.mean(axis).abs()).toArray()));

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "cs-tlparity-"));
process.on("exit", () => fs.rmSync(scratch, { recursive: true, force: true }));

/** A GPT-2 snapshot in Hugging Face layout from a random model with random LayerNorm weights and biases (no b_U, as GPT-2). */
function gpt2Snapshot(): string {
  const dir = path.join(scratch, "gpt2");
  if (!fs.existsSync(dir)) {
    const model = randomModel("gpt2", { seed: 3, cfg: { unembed_bias: false } });
    assert.equal(cs.saveHF(model, dir), "huggingface");
  }
  return dir;
}

/** Every property TransformerLens's processed weights have, checked on the model's parameters. */
function assertFoldedForm(m: HookedTransformer, tol: number, hadLnFinalBias: boolean): void {
  const norms = [...m.blocks.items.flatMap((b) => [b.ln1, b.ln2]), m.ln_final].filter((n) => n !== null);
  assert.ok(norms.length > 0);
  for (const n of norms) {
    assert.ok(n.w.toArray().every((v) => v === 1), "LayerNorm weights are 1");
    assert.ok(n.b!.toArray().every((v) => v === 0), "LayerNorm biases are 0");
  }
  // Writing weights: mean over d_model (the last axis) is 0.
  const writers: [string, Tensor][] = [["W_E", m.embed.W_E], ["W_pos", m.pos_embed!.W_pos]];
  for (const b of m.blocks.items) writers.push([`${b.layer}.W_O`, b.attn.Wo], [`${b.layer}.b_O`, b.attn.bo!], [`${b.layer}.W_out`, b.mlp!.W_out], [`${b.layer}.b_out`, b.mlp!.b_out!]);
  for (const [name, W] of writers) assert.ok(maxMean(W, -1) < tol, `${name} is centred over d_model (max |mean| ${maxMean(W, -1)})`);
  // Reading weights are centred over d_model too (folding LayerNorm centres them), value biases are 0.
  for (const b of m.blocks.items) {
    for (const [name, W] of [["W_Q", b.attn.Wq], ["W_K", b.attn.Wk], ["W_V", b.attn.Wv], ["W_in", b.mlp!.W_in]] as const) assert.ok(maxMean(W, 0) < tol, `${b.layer}.${name} centred over d_model`);
    assert.ok(b.attn.bv!.toArray().every((v) => v === 0), "b_V is 0");
  }
  // The unembedding: mean over d_vocab is 0 for W_U and b_U (which folding ln_final.b created).
  assert.ok(maxMean(m.unembed.W_U, -1) < tol, "W_U centred over d_vocab");
  assert.equal(m.unembed.b_U !== null, hadLnFinalBias, "b_U exists exactly when there was a non-zero ln_final.b to fold");
  if (m.unembed.b_U) assert.ok(Math.abs(cs.noGrad(() => m.unembed.b_U!.mean()).item()) < tol, "b_U centred");
}

describe("fromPretrained: TransformerLens's default processing", () => {
  test("on a random GPT-2 snapshot: log-probs and centred logits equal loadPretrained's to 1e-5, weights in folded form", () => {
    const dir = gpt2Snapshot();
    const raw = cs.loadPretrained(dir), tl = cs.fromPretrained(dir);
    assert.deepEqual(tl.processing, ["foldLn", "centerWritingWeights", "centerUnembed", "foldValueBiases"]);
    // The raw model really is unprocessed (or the test could not fail).
    assert.ok(raw.model.blocks.at(0).ln1!.w.toArray().some((v) => v !== 1), "loadPretrained keeps the LayerNorm weights");
    const toks = randomTokens(raw.config.d_vocab, 2, 12, 5);
    const a = logits(raw.model, toks), b = logits(tl.model, toks);
    const lp = maxAbsDiff(logProbs(a), logProbs(b)), c = maxAbsDiff(centred(a), centred(b));
    console.log(`  random GPT-2: max |Δ log-prob| ${lp.toExponential(2)}, max |Δ centred logit| ${c.toExponential(2)}, max |Δ logit| ${maxAbsDiff(a, b).toExponential(2)} (centerUnembed shifts each position by a constant)`);
    assertClose(logProbs(b), logProbs(a), 1e-5, "log-probs");
    assertClose(centred(b), centred(a), 1e-5, "centred logits");
    assertFoldedForm(tl.model, 1e-6, true);
  });

  test("a processed model saves (in circuitscope's layout: GPT-2 in Hugging Face's has no b_U) and reloads bitwise", () => {
    const tl = cs.fromPretrained(gpt2Snapshot()), dir = path.join(scratch, "gpt2-processed");
    assert.equal(cs.saveHF(tl.model, dir), "circuitscope");
    const back = cs.loadPretrained(dir);
    const toks = randomTokens(tl.config.d_vocab, 2, 10, 8);
    assertBitwiseEqual(logits(back.model, toks), logits(tl.model, toks), "logits");
    assertFoldedForm(back.model, 1e-6, true);
  });

  test("centerUnembed: false keeps the raw logits equal to 1e-5", () => {
    const dir = gpt2Snapshot();
    const raw = cs.loadPretrained(dir), tl = cs.fromPretrained(dir, { centerUnembed: false });
    assert.deepEqual(tl.processing, ["foldLn", "centerWritingWeights", "foldValueBiases"]);
    const toks = randomTokens(raw.config.d_vocab, 2, 12, 6);
    assertClose(logits(tl.model, toks), logits(raw.model, toks), 1e-5, "logits");
  });

  test("on ../shared/models/tiny-gpt2 (a real GPT-2 checkpoint): the same", { skip: noTinyGpt2 }, () => {
    const raw = cs.loadPretrained(tinyGpt2), tl = cs.fromPretrained(tinyGpt2);
    const lnFinalBias = raw.model.ln_final!.b!.toArray().some((v) => v !== 0);
    const toks = [raw.tokenizer!.encode("The Eiffel Tower is in Paris, and the Colosseum is in")];
    const a = logits(raw.model, toks), b = logits(tl.model, toks);
    assertClose(logProbs(b), logProbs(a), 1e-5, "log-probs");
    assertClose(centred(b), centred(a), 1e-5, "centred logits");
    assertFoldedForm(tl.model, 1e-6, lnFinalBias);
    assert.equal(tl.model.tokenizer, tl.tokenizer, "the model carries its tokenizer");
  });

  test("a model without norms gets only the steps TransformerLens applies to it; asking for more throws", () => {
    const dir = path.join(scratch, "attn-only-nonorm");
    const m = new cs.HookedTransformer(cs.makeConfig({ architecture: "attn-only", d_model: 8, n_layers: 1, n_heads: 2, d_vocab: 11, n_ctx: 6, normalization_type: null })).initWeights(1);
    assert.equal(cs.saveHF(m, dir), "circuitscope");
    assert.deepEqual(cs.fromPretrained(dir).processing, ["centerUnembed", "foldValueBiases"]);
    assert.throws(() => cs.fromPretrained(dir, { foldLn: true }), /no normalisation layers/);
  });
});

describe("getActName and the cache's shorthand", () => {
  test("getActName reproduces TransformerLens's utils.get_act_name examples", () => {
    const cases: [Parameters<typeof cs.getActName>, string][] = [
      [["embed"], "hook_embed"], [["pos_embed"], "hook_pos_embed"],
      [["k", 6, "a"], "blocks.6.attn.hook_k"], [["pre", 2], "blocks.2.mlp.hook_pre"], [["pattern", 1], "blocks.1.attn.hook_pattern"],
      [["attn", 0], "blocks.0.attn.hook_pattern"], [["attn_logits", 3], "blocks.3.attn.hook_attn_scores"], [["value", 2], "blocks.2.attn.hook_v"],
      [["resid_pre", 3], "blocks.3.hook_resid_pre"], [["resid_post", 0, "b"], "blocks.0.hook_resid_post"], [["mlp_out", 1], "blocks.1.hook_mlp_out"],
      [["normalized", 27, "ln2"], "blocks.27.ln2.hook_normalized"], [["scale"], "ln_final.hook_scale"], [["scale", 0, "ln1"], "blocks.0.ln1.hook_scale"],
      [["k6"], "blocks.6.attn.hook_k"], [["scale4ln1"], "blocks.4.ln1.hook_scale"], [["pre5"], "blocks.5.mlp.hook_pre"],
      [["blocks.2.attn.hook_z"], "blocks.2.attn.hook_z"], [["hook_embed"], "hook_embed"],
    ];
    for (const [args, want] of cases) assert.equal(cs.getActName(...args), want, `getActName(${args.map((a) => JSON.stringify(a)).join(", ")})`);
  });

  const model = randomModel("gpt2", { seed: 2 });
  const toks = randomTokens(model.cfg.d_vocab, 2, 9, 4);
  const { cache } = cs.noGrad(() => model.runWithCache(toks));

  test("cache.get(\"pattern\", 1) is cache.get(\"blocks.1.attn.hook_pattern\"); negative layers count from the end", () => {
    assert.equal(cache.get("pattern", 1), cache.get("blocks.1.attn.hook_pattern"));
    assert.equal(cache.get("resid_post", -1), cache.get("blocks.1.hook_resid_post"));
    assert.equal(cache.get("scale", 0, "ln2"), cache.get("blocks.0.ln2.hook_scale"));
    assert.equal(cache.get("normalized"), cache.get("ln_final.hook_normalized"));
    assert.throws(() => cache.get("patern", 1), /unknown hook point "blocks\.1\.hook_patern"; did you mean "blocks\.1\.attn\.hook_pattern"/);
    assert.throws(() => cache.get("pattern", 2), /layer 2 out of range/);
  });

  test("stackActivation stacks one activation of every layer, TransformerLens's stack_activation", () => {
    const s = cache.stackActivation("pattern");
    assert.deepEqual(s.shape, [2, 2, 4, 9, 9]);
    assertBitwiseEqual(s.select(0, 1), cache.get("blocks.1.attn.hook_pattern"), "layer 1");
    assertBitwiseEqual(cache.stackActivation("resid_pre", 1).select(0, 0), cache.get("blocks.0.hook_resid_pre"), "layer < 1 only");
    assert.deepEqual(cache.stackActivation("scale", undefined, "ln1").shape, [2, 2, 9, 1]);
  });

  test("accumulatedResid is the cumulative sum of decomposeResid's components", () => {
    const acc = cache.accumulatedResid(undefined, { inclMid: true });
    const parts = cache.decomposeResid();
    const comp = (label: string) => parts.components.select(0, parts.labels.indexOf(label));
    let sum = cs.noGrad(() => comp("embed").add(comp("pos_embed")));
    const want = new Map<string, Tensor>();
    for (let l = 0; l < 2; l++) {
      want.set(`${l}_pre`, sum);
      sum = cs.noGrad(() => sum.add(comp(`${l}_attn_out`)));
      want.set(`${l}_mid`, sum);
      sum = cs.noGrad(() => sum.add(comp(`${l}_mlp_out`)));
    }
    want.set("final_post", sum);
    assert.deepEqual(acc.labels, [...want.keys()]);
    acc.labels.forEach((label, i) => assertClose(acc.components.select(0, i), want.get(label)!, 1e-5, label));
  });

  test("stackHeadResults of a layer summed over its heads is attn_out minus b_O", () => {
    const heads = cache.stackHeadResults();
    for (let l = 0; l < 2; l++) {
      const sum = cs.noGrad(() => heads.components.slice(0, 4 * l, 4 * (l + 1)).sum(0));
      const want = cs.noGrad(() => cache.get("attn_out", l).sub(model.blocks.at(l).attn.bo!));
      assertClose(sum, want, 1e-5, `layer ${l}`);
    }
  });
});

describe("model.toTokens, toStrTokens, toString and generate", { skip: noTinyGpt2 }, () => {
  const { model, tokenizer } = cs.loadPretrained(tinyGpt2);
  const tok = tokenizer!;
  const text = "The Eiffel Tower is in";

  test("the text methods equal the functions they wrap, with the model's tokenizer", () => {
    assertBitwiseEqual(model.toTokens(text), cs.toTokens(tok, text).tokens, "toTokens");
    assertBitwiseEqual(model.toTokens([text, "Hi"]), cs.toTokens(tok, [text, "Hi"]).tokens, "toTokens, padded batch");
    assert.deepEqual(model.toStrTokens(text), cs.toStrTokens(tok, text));
    assert.deepEqual(model.toStrTokens(text, { prependBos: false }), ["The", " E", "iff", "el", " Tower", " is", " in"]);
    assert.equal(model.toString(tok.encode(text)), text);
    assert.equal(model.toSingleToken(" Paris"), tok.encode(" Paris")[0]);
    const bare = new cs.HookedTransformer(model.cfg);
    assert.throws(() => bare.toTokens(text), /toTokens: the model has no tokenizer/);
  });

  test("generate: greedy and seeded sampling equal cs.generate on the same ids; top-k 1 is greedy", () => {
    const ids = cs.toTokens(tok, text).tokens.toNested() as number[][];
    const greedy = model.generate(text, { maxNewTokens: 8, doSample: false });
    const ref = cs.generate(model, ids, { maxNewTokens: 8, doSample: false, eosTokenId: tok.eosTokenId ?? undefined });
    assert.deepEqual(greedy.tokens, ref.tokens);
    assert.deepEqual(greedy.text, ref.tokens.map((t) => tok.decode(t)));
    const opts = { maxNewTokens: 8, temperature: 0.8, topK: 50, topP: 0.9, seed: 7 };
    const sampled = model.generate(text, opts);
    assert.deepEqual(sampled.tokens, cs.generate(model, ids, { ...opts, eosTokenId: tok.eosTokenId ?? undefined }).tokens);
    assert.deepEqual(model.generate(text, opts).tokens, sampled.tokens, "the same seed, the same tokens");
    assert.deepEqual(model.generate(text, { maxNewTokens: 8, topK: 1, seed: 3 }).tokens, greedy.tokens, "top-k 1 keeps only the argmax");
    assert.deepEqual(model.generate(ids[0]!, { maxNewTokens: 8, doSample: false }).tokens, greedy.tokens, "token ids in, the same");
  });
});
