// `circuitscope sae train|eval|dashboard` end to end on a character-level model the test trains
// itself (train-char, 1 layer, a few seconds): an SAE and a transcoder are trained, saved in
// SAELens's layout, reloaded, evaluated against the library's numbers and shown as dashboards; bad
// input (unknown hook, wrong d_in, missing files, unknown subcommand) fails with a usage error.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { assertBalanced, assertSvg, cli, errorOf, repo } from "./cli-helpers.js";
import { loadPretrained } from "../src/io/snapshot.js";
import { loadSae } from "../src/sae/io.js";
import { collectActivations } from "../src/sae/activations.js";
import { reconstructionMetrics } from "../src/sae/metrics.js";
import { corpusWindows } from "../src/techniques/corpus.js";
import type { HookName } from "../src/model/hooks.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "circuitscope-sae-cli-"));
const corpus = path.join(dir, "corpus.txt"), model = path.join(dir, "lm", "model");
const shakespeare = path.resolve(repo, "../shared/data/tinyshakespeare.txt");

before(() => {
  // Tiny Shakespeare when it is there, else a generated text with some structure.
  const text = fs.existsSync(shakespeare) ? fs.readFileSync(shakespeare, "utf8").slice(0, 60_000)
    : Array.from({ length: 3000 }, (_, i) => ["the cat sat on the mat.", "a dog ran to the park!", "we sing, you dance."][i % 3]).join("\n");
  fs.writeFileSync(corpus, text);
  const r = cli("train-char", corpus, "--out", path.join(dir, "lm"), "--layers", "1", "--heads", "2", "--d-model", "32", "--ctx", "32",
    "--batch", "16", "--iters", "300", "--eval-every", "300", "--eval-iters", "2", "--checkpoint-every", "0", "--json");
  assert.equal(r.code, 0, r.stderr);
});

interface TrainDoc {
  sae: { d_in: number; d_sae: number; hook_name: string; hook_name_out: string; activation: string };
  steps: number; resumedFrom: number | null; final: { l0: number };
  evaluation: { reconstruction: { mse: number; explainedVariance: number; l0: number }; downstream: { ceClean: number; ceSae: number; ceZero: number; ceRecovered: number; klSae: number } };
  files: string[];
}

test("sae train (topk) writes an SAELens folder the library loads; eval reproduces the library's metrics; dashboard draws the latents", () => {
  const out = path.join(dir, "topk");
  const r = cli("sae", "train", model, "--corpus", corpus, "--hook", "blocks.0.hook_resid_post", "--activation", "topk", "--k", "4", "--d-sae", "64",
    "--steps", "200", "--batch", "128", "--max-windows", "96", "--eval-windows", "16", "--out", out, "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /step 200\/200/);
  const doc = JSON.parse(r.stdout) as TrainDoc;
  assert.equal(doc.steps, 200);
  assert.ok(doc.final.l0 <= 4);
  for (const f of ["cfg.json", "sae_weights.safetensors", "checkpoint.safetensors", "sae-train.svg", "sae-train.json"]) assert.ok(fs.existsSync(path.join(out, f)), f);
  assertSvg(path.join(out, "sae-train.svg"), ["L0"]);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, "cfg.json"), "utf8"));
  assert.equal(cfg.architecture, "topk"); assert.equal(cfg.k, 4); assert.equal(cfg.d_in, 32); assert.equal(cfg.metadata.hook_name, "blocks.0.hook_resid_post");
  const e = doc.evaluation;
  assert.ok(e.reconstruction.explainedVariance > 0.3 && e.reconstruction.l0 <= 4, JSON.stringify(e.reconstruction));
  assert.ok(e.downstream.ceClean < e.downstream.ceSae && e.downstream.ceSae < e.downstream.ceZero, JSON.stringify(e.downstream));
  assert.ok(Math.abs(e.downstream.ceRecovered - (e.downstream.ceZero - e.downstream.ceSae) / (e.downstream.ceZero - e.downstream.ceClean)) < 1e-12);

  // eval on the same held-out windows gives the training report's numbers, and the library's.
  const ev = cli("sae", "eval", model, out, "--corpus", corpus, "--skip-windows", "96", "--max-windows", "16", "--out", path.join(dir, "ev"), "--json");
  assert.equal(ev.code, 0, ev.stderr);
  const evDoc = JSON.parse(ev.stdout) as { reconstruction: TrainDoc["evaluation"]["reconstruction"]; downstream: TrainDoc["evaluation"]["downstream"]; files: string[] };
  assert.equal(evDoc.downstream.ceSae, e.downstream.ceSae);
  assert.equal(evDoc.reconstruction.mse, e.reconstruction.mse);
  const { model: m, tokenizer } = loadPretrained(model);
  const windows = corpusWindows(tokenizer!, fs.readFileSync(corpus, "utf8"), 32, 112, tokenizer!.bosTokenId ?? undefined).slice(96);
  const skip = tokenizer!.bosTokenId === null || tokenizer!.bosTokenId === undefined ? 0 : 1;
  const hook = "blocks.0.hook_resid_post" as HookName;
  const lib = reconstructionMetrics(loadSae(out), collectActivations(m, windows, { hookIn: hook, hookOut: hook, skipPositions: skip, batchWindows: 8 }));
  // This process runs the TypeScript reference kernels, the CLI the fastest backend: equal to float32 rounding.
  assert.ok(Math.abs(lib.mse - evDoc.reconstruction.mse) <= 1e-5 * lib.mse, `${lib.mse} vs ${evDoc.reconstruction.mse}`);
  assertSvg(path.join(dir, "ev", "sae-density.svg"), ["log10 firing frequency"]);
  // --skip-positions leaves the first positions of every window out, as the library's skipPositions does.
  const ev3 = cli("sae", "eval", model, out, "--corpus", corpus, "--skip-windows", "96", "--max-windows", "16", "--skip-positions", "3", "--json");
  assert.equal(ev3.code, 0, ev3.stderr);
  const ev3Doc = JSON.parse(ev3.stdout) as { reconstruction: { mse: number }; corpus: { skippedPositions: number } };
  assert.equal(ev3Doc.corpus.skippedPositions, 3);
  const lib3 = reconstructionMetrics(loadSae(out), collectActivations(m, windows, { hookIn: hook, hookOut: hook, skipPositions: 3, batchWindows: 8 }));
  assert.ok(Math.abs(lib3.mse - ev3Doc.reconstruction.mse) <= 1e-5 * lib3.mse, `${lib3.mse} vs ${ev3Doc.reconstruction.mse}`);
  assert.notEqual(ev3Doc.reconstruction.mse, evDoc.reconstruction.mse);

  const dash = cli("sae", "dashboard", model, out, "--corpus", corpus, "--top", "2", "--k", "3", "--max-windows", "32", "--out", path.join(dir, "dash"), "--json");
  assert.equal(dash.code, 0, dash.stderr);
  const dd = JSON.parse(dash.stdout) as { latents: { latent: number; density: number; examples: { value: number; tokens: { act: number }[]; offset: number }[]; logits: { positive: { value: number }[]; negative: { value: number }[] } }[] };
  assert.equal(dd.latents.length, 2);
  for (const l of dd.latents) {
    assert.ok(l.density > 0 && l.examples.length === 3);
    assert.ok(l.examples.every((x, i) => i === 0 || x.value <= l.examples[i - 1]!.value), "examples best first");
    assert.ok(l.examples.every((x) => Math.abs(x.tokens[x.offset]!.act - x.value) < 1e-5), "the max token's colour is its activation");
    assert.ok(l.logits.positive[0]!.value >= l.logits.negative[0]!.value);
  }
  const html = fs.readFileSync(path.join(dir, "dash", "sae-dashboard.html"), "utf8");
  assertBalanced(html, "sae-dashboard.html");
  assert.match(html, new RegExp(`latent ${dd.latents[0]!.latent}`));
  assertSvg(path.join(dir, "dash", "sae-dashboard.svg"), ["logit effects"]);
});

test("sae train: a skip transcoder from ln2.hook_normalized to hook_mlp_out, resumable", () => {
  const out = path.join(dir, "tc");
  const args = ["sae", "train", model, "--corpus", corpus, "--hook", "blocks.0.ln2.hook_normalized", "--hook-out", "blocks.0.hook_mlp_out", "--skip",
    "--d-sae", "96", "--steps", "120", "--batch", "128", "--max-windows", "64", "--eval-windows", "8", "--sparsity", "1", "--checkpoint-every", "40", "--out", out, "--json"];
  const first = cli(...args, "--stop-after", "80");
  assert.equal(first.code, 0, first.stderr);
  assert.equal((JSON.parse(first.stdout) as TrainDoc).steps, 80);
  assert.match(errorOf(cli(...args)), /--resume/);
  const r = cli(...args, "--resume");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as TrainDoc;
  assert.equal(doc.resumedFrom, 80);
  assert.equal(doc.sae.hook_name_out, "blocks.0.hook_mlp_out");
  assert.ok(doc.evaluation.reconstruction.explainedVariance > 0.5, JSON.stringify(doc.evaluation.reconstruction));
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, "cfg.json"), "utf8")).architecture, "skip_transcoder");
  assert.ok(loadSae(out).W_skip);
  // Its dashboard scans the latents at the input hook and reads the decoder at hook_mlp_out.
  const dash = cli("sae", "dashboard", model, out, "--corpus", corpus, "--top", "1", "--k", "2", "--max-windows", "16", "--json");
  assert.equal(dash.code, 0, dash.stderr);
  const dd = JSON.parse(dash.stdout) as { hook: string; latents: { examples: unknown[]; logits: { via: string } }[] };
  assert.equal(dd.hook, "blocks.0.ln2.hook_normalized");
  assert.equal(dd.latents[0]!.examples.length, 2);
  assert.equal(dd.latents[0]!.logits.via, "direct");
});

test("sae: usage errors name the problem", () => {
  const sae = path.join(dir, "topk");
  assert.match(errorOf(cli("sae", "train", model, "--corpus", corpus, "--hook", "blocks.0.hook_resid_pots", "--out", path.join(dir, "x"), "--json")), /unknown hook point "blocks.0.hook_resid_pots"; did you mean "blocks.0.hook_resid_post"/);
  assert.match(errorOf(cli("sae", "train", model, "--corpus", path.join(dir, "missing.txt"), "--hook", "blocks.0.hook_resid_post", "--out", path.join(dir, "x"), "--json")), /--corpus: no file at/);
  assert.match(errorOf(cli("sae", "eval", model, path.join(dir, "no-sae"), "--corpus", corpus, "--json")), /no SAE folder at/);
  assert.match(errorOf(cli("sae", "fit", model, "--json")), /unknown sae subcommand "fit"/);
  assert.match(errorOf(cli("sae", "eval", model, sae, "--corpus", corpus, "--skip-positions", "1.5", "--json")), /--skip-positions must be a non-negative integer, got 1.5/);
  assert.match(errorOf(cli("sae", "eval", model, sae, "--corpus", corpus, "--skip-positions", "40", "--json")), /--skip-positions 40 leaves no position of a 3[23]-token window/);
  assert.match(errorOf(cli("sae", "train", model, "--corpus", corpus, "--hook", "blocks.0.hook_resid_post", "--activation", "gated", "--out", path.join(dir, "x"), "--json")), /--activation must be/);
  // An SAE whose d_in does not match its hook in this model: point its config at the MLP's 128-wide hook_post.
  const wrong = path.join(dir, "wrong");
  fs.mkdirSync(wrong, { recursive: true });
  fs.copyFileSync(path.join(sae, "sae_weights.safetensors"), path.join(wrong, "sae_weights.safetensors"));
  const cfg = JSON.parse(fs.readFileSync(path.join(sae, "cfg.json"), "utf8"));
  cfg.metadata.hook_name = "blocks.0.mlp.hook_post";
  fs.writeFileSync(path.join(wrong, "cfg.json"), JSON.stringify(cfg));
  assert.match(errorOf(cli("sae", "eval", model, wrong, "--corpus", corpus, "--json")), /the SAE has d_in 32 but blocks.0.mlp.hook_post has width 128/);
  assert.match(errorOf(cli("sae", "dashboard", model, sae, "--corpus", corpus, "--latents", "64", "--json")), /latent 64 is out of range/);
  const help = cli("sae", "--help");
  for (const flag of ["--hook-out", "--skip", "--activation", "--k", "--sparsity", "--bandwidth", "--aux-k", "--normalize", "--resample-every", "--resume", "--latents", "--top", "--skip-windows", "--skip-positions"]) assert.ok(help.stdout.includes(flag), flag);
});
