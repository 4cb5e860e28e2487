// `circuitscope run` end to end: spawn the built CLI on the shared tiny-gpt2 snapshot (skipped when
// ../shared is absent) and check its JSON against the same model run in process.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { loadPretrained } from "../src/io/snapshot.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { generate } from "../src/model/generate.js";
import { cli, noTinyGpt2 as skip, repo, tinyGpt2 as snapshot } from "./cli-helpers.js";

const PROMPT = "The Eiffel Tower is in";

interface RunDoc {
  promptTokens: { id: number; str: string }[];
  top: { rank: number; id: number; str: string; prob: number; logit: number }[];
  generation: null | { tokens: { id: number; str: string; logprob: number }[]; text: string; stopReason: string; msPerToken: number };
}

test("run --json: prompt tokens with BOS, top next tokens matching the model in process", { skip }, () => {
  const r = cli("run", snapshot, PROMPT, "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /loaded gpt2 \(2 layers, d_model 2, vocab 50257\)/);
  const doc = JSON.parse(r.stdout) as RunDoc;
  // GPT-2's tokens for the prompt, after <|endoftext|> as BOS (TransformerLens's default).
  assert.deepEqual(doc.promptTokens.map((t) => t.id), [50256, 464, 412, 733, 417, 8765, 318, 287]);
  assert.deepEqual(doc.promptTokens.map((t) => t.str), ["<|endoftext|>", "The", " E", "iff", "el", " Tower", " is", " in"]);
  assert.deepEqual(doc.top.map((t) => t.rank), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(doc.generation, null);

  const { model, tokenizer } = loadPretrained(snapshot);
  const ids = doc.promptTokens.map((t) => t.id);
  const logp = noGrad(() => model.forward([ids]).logSoftmax(-1).select(1, ids.length - 1));
  const best = Array.from(logp.toArray().keys()).sort((a, b) => logp.get(0, b) - logp.get(0, a) || a - b).slice(0, 10);
  assert.deepEqual(doc.top.map((t) => t.id), best);
  for (const t of doc.top) {
    assert.ok(Math.abs(Math.log(t.prob) - logp.get(0, t.id)) < 1e-5, `log prob of ${t.id}`);
    assert.equal(t.str, tokenizer!.decode([t.id]));
  }
});

test("run --generate: seeded sampling repeats, greedy matches generate() in process, text on stdout", { skip }, () => {
  const args = ["run", snapshot, PROMPT, "--generate", "6", "--temperature", "1", "--top-k", "50", "--seed", "3", "--json"];
  const a = JSON.parse(cli(...args).stdout) as RunDoc, b = JSON.parse(cli(...args).stdout) as RunDoc;
  assert.ok(a.generation && a.generation.tokens.length > 0);
  assert.deepEqual(a.generation, { ...b.generation!, msPerToken: a.generation.msPerToken });

  const g = JSON.parse(cli("run", snapshot, PROMPT, "--generate", "4", "--json").stdout) as RunDoc;
  const { model, tokenizer } = loadPretrained(snapshot);
  const ids = g.promptTokens.map((t) => t.id);
  const ref = generate(model, [ids], { maxNewTokens: 4, doSample: false, eosTokenId: tokenizer!.eosTokenId! });
  assert.deepEqual(g.generation!.tokens.map((t) => t.id), ref.newTokens[0]);
  assert.equal(g.generation!.text, tokenizer!.decode(ref.newTokens[0]!));

  const text = cli("run", snapshot, PROMPT, "--generate", "4", "--top", "3");
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^top 3 next tokens:$/m);
  assert.match(text.stdout, /^rank +id +prob +logit +token$/m);
  assert.equal(text.stdout.split("\n").filter((l) => /^ +[1-3] +\d+ /.test(l)).length, 3);
  assert.ok(text.stdout.includes(PROMPT + g.generation!.text), "the continuation follows the prompt");
  assert.match(text.stderr, /generated 4 tokens in \d+ ms/);
});

test("run: a missing folder and bad flags fail with a message and exit code", { skip }, () => {
  const missing = cli("run", path.join(repo, "no-such-model"), "hi", "--json");
  assert.equal(missing.code, 1);
  assert.match(JSON.parse(missing.stdout).error.message, /not a folder/);
  const bad = cli("run", snapshot, "hi", "--top-p", "2");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--top-p must be in \(0, 1\]/);
  assert.equal(cli("run", snapshot).code, 2);
});
