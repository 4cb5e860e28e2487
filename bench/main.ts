// `npm run bench`: the engine's speed on this machine, beside PyTorch/NumPy measured in the same run.
//   matmul   GFLOP/s of GPT-2-small shapes per backend (plain and with weights packed once)
//   overhead cost of a tiny op ([16,768] + [16,768]) through the Tensor API
//   gpt2     a GPT-2-small-shaped model (random weights): forward at T=128 and 1024, forward+backward at 128
//   patching activation patching's 12-layer × 20-position resid_pre sweep on that model
//   grokking one full-batch AdamW training step of the grokking lab's 1-layer model (p = 113), beside PyTorch
// Flags: --json (one JSON document on stdout), --quick (fewer shapes and repetitions), --only a,b
// (sections), --no-peer (skip PyTorch), --out file.json (also save the JSON). Progress goes to stderr.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import os from "node:os";
import * as cs from "../src/index.js";
import { linear } from "../src/tensor/ops/linalg.js";
import { HookedTransformer } from "../src/model/transformer.js";
import { gpt2SmallConfig } from "../src/model/config.js";
import { grokkingConfig } from "../src/labs/grokking/checkpoint.js";
import { splitPairs } from "../src/labs/grokking/train.js";
import { AdamW } from "../src/nn/optim.js";
import { crossEntropy } from "../src/tensor/ops/nn.js";
import { slice } from "../src/tensor/ops/movement.js";
import { generate } from "../src/model/generate.js";
import { backendStatus, setBackend, getBackend, type BackendName } from "../src/backend/registry.js";
import { measurePeak } from "./peak.js";

const argv = process.argv.slice(2);
const flag = (n: string) => argv.includes(`--${n}`);
const optVal = (n: string) => { const i = argv.indexOf(`--${n}`); return i >= 0 ? argv[i + 1] : undefined; };
const json = flag("json"), quick = flag("quick");
const only = optVal("only")?.split(",");
const want = (s: string) => !only || only.includes(s);
const log = (m: string) => process.stderr.write(m + "\n");

/** Median seconds per call over at least minTime seconds (and minReps calls), after one warm-up. */
function timeIt(fn: () => void, minTime = quick ? 0.2 : 0.6, minReps = 3, maxReps = 1000): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minReps || (performance.now() - start < minTime * 1000 && times.length < maxReps)) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** Medians of fn with setting(true) and setting(false), the two interleaved (ABBA…) over `rounds` calls each, after a warm-up of both. */
function timeAlternating(fn: () => void, setting: (on: boolean) => void, rounds: number): [number, number] {
  const t: Record<"on" | "off", number[]> = { on: [], off: [] };
  for (const on of [true, false]) { setting(on); fn(); }
  for (let r = 0; r < rounds; r++) {
    for (const on of r % 2 ? [false, true] : [true, false]) {
      setting(on);
      const t0 = performance.now();
      fn();
      t[on ? "on" : "off"].push((performance.now() - t0) / 1000);
    }
  }
  setting(true);
  const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  return [med(t.on), med(t.off)];
}

const GROK_P = 113; // grokking: Nanda et al.'s modular addition, full-batch step on 30% of the p² pairs
const GEN_PROMPT = 10, GEN_NEW = 20; // generation: new tokens after a short prompt, greedy, KV cache
const SHAPES: [number, number][] = [[768, 2304], [768, 3072], [3072, 768], [768, 50257]];
const TS = quick ? [16, 128] : [16, 128, 1024];
const available = backendStatus().filter((b) => b.available).map((b) => b.name);

interface MatmulRow { backend: string; T: number; K: number; N: number; gflops: number; packedGflops: number | null }
const results: Record<string, unknown> = {
  machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` },
  backends: backendStatus(),
};

// 1. Peak: the FMA throughput of this CPU, measured by a register-only loop in the native addon.
const peak = measurePeak();
results.peak = peak;
if (peak) log(`peak: ${peak.gflops1.toFixed(1)} GFLOP/s on 1 core, ${peak.gflopsAll.toFixed(1)} on ${peak.threads}`);

// 2. Peer: PyTorch and NumPy on the same shapes, in a child process (never required).
let peer: Record<string, any> | null = null;
if (!flag("no-peer")) {
  const spec = { matmul: TS.flatMap((T) => SHAPES.map(([K, N]) => [T, K, N])), gpt2: want("gpt2") ? { forward: quick ? [128] : [128, 1024], backward: [128], generate: [GEN_PROMPT, GEN_NEW] } : null,
    grokking: want("grokking") ? { p: GROK_P, frac_train: 0.3, d_model: 128, n_heads: 4, d_mlp: 512, lr: 1e-3, weight_decay: 1.0, betas: [0.9, 0.98], steps: quick ? 5 : 10 } : null };
  const py = fileURLToPath(new URL("../../bench/torch_ref.py", import.meta.url));
  for (const exe of ["/usr/bin/python3", "python3"]) {
    log(`peer: running PyTorch reference with ${exe} …`);
    const r = spawnSync(exe, [py, JSON.stringify(spec)], { encoding: "utf8", maxBuffer: 1 << 24 });
    if (r.status === 0) {
      try {
        const doc = JSON.parse(r.stdout);
        if (!doc.error) { peer = doc; break; }
        log(`peer: ${doc.error}`);
      } catch { log(`peer: unreadable output from ${exe}`); }
    }
  }
  results.peer = peer ?? { unavailable: "no Python with torch found (Debian: apt-get install python3-torch)" };
}
const peerMatmul = (T: number, K: number, N: number, key = "matmul"): number | null =>
  (peer?.[key] as { T: number; K: number; N: number; gflops: number }[] | undefined)?.find((r) => r.T === T && r.K === K && r.N === N)?.gflops ?? null;

// 3. Matmul per backend.
if (want("matmul")) {
  const rows: MatmulRow[] = [];
  const rng = new cs.Rng(0);
  for (const name of available) {
    setBackend(name);
    for (const T of TS) for (const [K, N] of SHAPES) {
      // The reference is ~1 GFLOP/s: measure it on the small shapes only.
      if (name === "ts" && (T > 16 || N > 4000)) continue;
      const x = cs.randn([T, K], { rng }), W = cs.randn([K, N], { rng });
      const flops = 2 * T * K * N;
      // In a scope, so the output's storage is recycled as PyTorch's caching allocator recycles it.
      const plain = timeIt(() => { cs.scope(() => { x.matmul(W); }); });
      let packed: number | null = null;
      if (getBackend().kernels.packMatrix) packed = timeIt(() => { cs.scope(() => { linear(x, W); }); });
      rows.push({ backend: name, T, K, N, gflops: flops / plain / 1e9, packedGflops: packed ? flops / packed / 1e9 : null });
      log(`matmul ${name} [${T},${K}]x[${K},${N}]: ${(flops / plain / 1e9).toFixed(1)} GFLOP/s${packed ? `, packed ${(flops / packed / 1e9).toFixed(1)}` : ""}`);
    }
  }
  results.matmul = rows;
}

// 4. Per-op overhead: [16,768] + [16,768], in a scope (storage recycled, the idiomatic hot loop)
// and without one (every result a fresh GC-owned allocation).
if (want("overhead")) {
  const rows: { backend: string; microseconds: number; unscopedMicroseconds: number }[] = [];
  for (const name of available) {
    setBackend(name);
    const a = cs.randn([16, 768]), b = cs.randn([16, 768]);
    const n = 20000;
    const per = (fn: () => void) => {
      for (let i = 0; i < 2000; i++) fn();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) fn();
      return ((performance.now() - t0) / n) * 1000;
    };
    const scoped = per(() => cs.scope(() => { a.add(b); }));
    const unscoped = per(() => { a.add(b); });
    rows.push({ backend: name, microseconds: scoped, unscopedMicroseconds: unscoped });
  }
  results.overhead = rows;
  log(`add [16,768]: ${rows.map((r) => `${r.backend} ${r.microseconds.toFixed(2)} µs (no scope ${r.unscopedMicroseconds.toFixed(2)})`).join(", ")}`);
}

// 5. GPT-2-small-shaped model.
if (want("gpt2")) {
  const best = (["native", "wasm", "ts"] as BackendName[]).find((b) => available.includes(b))!;
  setBackend(best);
  log(`gpt2: building a GPT-2-small-shaped model (random weights) on ${getBackend().description} …`);
  const model = new HookedTransformer(gpt2SmallConfig()).initWeights(0);
  model.packWeights(); // as loadPretrained does
  const rng = new cs.Rng(1);
  const g: Record<string, number> = {};
  for (const T of quick ? [128] : [128, 1024]) {
    const toks = cs.randint(0, 50257, [1, T], rng);
    g[`forward_T${T}`] = timeIt(() => { cs.scope(() => { cs.noGrad(() => model.forward(toks)); }); }, quick ? 0.5 : 2, 3, 10);
    log(`gpt2 forward T=${T}: ${(g[`forward_T${T}`]! * 1000).toFixed(0)} ms`);
  }
  const toks = cs.randint(0, 50257, [1, 128], rng);
  g.forward_backward_T128 = timeIt(() => { cs.scope(() => { model.zeroGrad(); cs.backward(model.loss(toks)); }); }, quick ? 0.5 : 2, 3, 10);
  log(`gpt2 forward+backward T=128: ${(g.forward_backward_T128 * 1000).toFixed(0)} ms`);
  // Forward with every activation cached vs plain forward, at T=128.
  const c = cs.randint(0, 50257, [1, 128], rng);
  const plain = timeIt(() => { cs.scope(() => { cs.noGrad(() => model.forward(c)); }); }, quick ? 0.5 : 2, 3, 10);
  const cached = timeIt(() => { cs.scope(() => { cs.noGrad(() => model.runWithCache(c)); }); }, quick ? 0.5 : 2, 3, 10);
  g.runWithCache_T128 = cached;
  log(`gpt2 runWithCache T=128: ${(cached * 1000).toFixed(0)} ms (forward ${(plain * 1000).toFixed(0)} ms, +${((cached / plain - 1) * 100).toFixed(1)}%)`);
  // Greedy generation with the KV cache.
  const prompt = Array.from(cs.randint(0, 50257, [GEN_PROMPT], rng).toArray());
  const gen = timeIt(() => { generate(model, [prompt], { maxNewTokens: GEN_NEW, doSample: false }); }, quick ? 0.5 : 2, 2, 5);
  const msPerToken = (gen / GEN_NEW) * 1000;
  log(`gpt2 generation: ${msPerToken.toFixed(1)} ms per new token (${GEN_PROMPT}-token prompt, ${GEN_NEW} new, greedy, KV cache)`);
  // Fused attention against the unfused path (scores, softmax and weighted sum as separate kernels), alternating
  // in this sitting so machine load hits both alike; ratio < 1 means the fused path is faster.
  const ab: Record<string, { fused: number; unfused: number; ratio: number }> = {};
  const abCases: [string, () => void][] = (quick ? [128] : [128, 1024]).map((T) => {
    const t = cs.randint(0, 50257, [1, T], rng);
    return [`forward_T${T}`, () => { cs.scope(() => { cs.noGrad(() => model.forward(t)); }); }] as [string, () => void];
  });
  abCases.push(["forward_backward_T128", () => { cs.scope(() => { model.zeroGrad(); cs.backward(model.loss(toks)); }); }]);
  for (const [name, fn] of abCases) {
    const [fused, unfused] = timeAlternating(fn, (on) => cs.setFusedAttention(on), quick ? 3 : 5);
    ab[name] = { fused, unfused, ratio: fused / unfused };
    log(`gpt2 ${name}: fused attention ${(fused * 1000).toFixed(0)} ms, unfused ${(unfused * 1000).toFixed(0)} ms (ratio ${(fused / unfused).toFixed(2)})`);
  }
  results.gpt2 = { backend: best, seconds: g, cacheOverhead: cached / plain - 1, forwardT128ForCache: plain, generateMsPerToken: msPerToken, fusedAttention: ab };
}

if (want("patching")) {
  // Activation patching: the 12-layer × 20-position resid_pre sweep (denoising, logit difference) on a
  // GPT-2-small-shaped model. TransformerLens's get_act_patch_resid_pre on this CPU is quoted from
  // the interpretability-techniques issue (about 27 s, 111 ms per patched forward), not measured here.
  const best = (["native", "wasm", "ts"] as BackendName[]).find((b) => available.includes(b))!;
  setBackend(best);
  const model = new HookedTransformer(gpt2SmallConfig()).initWeights(0);
  model.packWeights();
  const rng = new cs.Rng(2), T = 20;
  const clean = [Array.from(cs.randint(0, 50257, [T], rng).toArray())];
  const corrupted = [clean[0]!.map((t, p) => (p === T - 4 ? (t + 1) % 50257 : t))];
  const metric = cs.logitDiffMetric([clean[0]![T - 1]!, corrupted[0]![T - 1]!]);
  const sweep = () => cs.scope(() => { cs.patchByPos(model, { clean, corrupted, metric, site: "resid_pre" }); });
  sweep(); // warm-up
  const t0 = performance.now();
  sweep();
  const seconds = (performance.now() - t0) / 1000, cells = model.cfg.n_layers * T;
  const TL_QUOTED_S = 27;
  log(`patching: resid_pre sweep ${model.cfg.n_layers}×${T} in ${seconds.toFixed(2)} s, ${((seconds / cells) * 1000).toFixed(1)} ms per patched forward, ${(TL_QUOTED_S / seconds).toFixed(1)}x vs TransformerLens (quoted ${TL_QUOTED_S} s)`);
  results.patching = { backend: best, cells, seconds, msPerPatchedForward: (seconds / cells) * 1000, transformerLensQuotedSeconds: TL_QUOTED_S, speedupVsQuoted: TL_QUOTED_S / seconds, loadavg: os.loadavg()[0] };
}

if (want("grokking")) {
  // One full-batch training step of the grokking lab's 1-layer model (Nanda et al. 2023): forward on
  // all 3,830 training pairs [a, b, =], cross-entropy at "=" over the p residues, backward, AdamW
  // (lr 1e-3, wd 1, betas 0.9/0.98), all inside one scope, as trainGrokking runs it.
  const best = (["native", "wasm", "ts"] as BackendName[]).find((b) => available.includes(b))!;
  setBackend(best);
  const p = GROK_P;
  const model = new HookedTransformer(grokkingConfig(p, 128, 4, 512)).initWeights(0);
  const trainSet = splitPairs(p, 0.3, 0);
  const pairs = Array.from({ length: p * p }, (_, i) => i).filter((r) => trainSet.has(r));
  const t = new Int32Array(pairs.length * 3), l = new Int32Array(pairs.length);
  pairs.forEach((r, i) => { const a = Math.floor(r / p), b = r % p; t.set([a, b, p], i * 3); l[i] = (a + b) % p; });
  const tokens = new cs.Tensor(t, [pairs.length, 3]), labels = new cs.Tensor(l, [pairs.length, 1]);
  const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 1, beta1: 0.9, beta2: 0.98 });
  let lastLoss = NaN;
  const step = () => cs.scope(() => {
    const logits = model.forward(tokens, { lastPositionOnly: true }); // [batch, 1, p+1]
    const loss = crossEntropy(slice(logits, 2, 0, p).contiguous(), labels);
    opt.zeroGrad();
    cs.backward(loss);
    opt.step();
    lastLoss = loss.item();
  });
  step(); // extra warm-up (timeIt adds one more)
  const seconds = timeIt(step, quick ? 1 : 3, quick ? 5 : 10, 50);
  log(`grokking full-batch step (p=${p}, ${pairs.length} pairs) on ${best}: ${(seconds * 1000).toFixed(1)} ms (loss ${lastLoss.toFixed(3)})`);
  results.grokking = { backend: best, p, batch: pairs.length, secondsPerStep: seconds, loss: lastLoss, peerSecondsPerStep: (peer?.grokking?.seconds_per_step as number | undefined) ?? null, loadavg: os.loadavg()[0] };
}

// Report.
const outFile = optVal("out");
if (outFile) writeFileSync(outFile, JSON.stringify(results, null, 2) + "\n");
if (json) {
  process.stdout.write(JSON.stringify(results, null, 2) + "\n");
} else {
  const lines: string[] = [];
  const m = results.machine as { cpu: string; cores: number; node: string };
  lines.push(`machine: ${m.cpu}, ${m.cores} cores, node ${m.node}`);
  if (peak) lines.push(`peak (FMA loop): ${peak.gflops1.toFixed(1)} GFLOP/s per core, ${peak.gflopsAll.toFixed(1)} GFLOP/s on ${peak.threads} cores`);
  if (peer) lines.push(`peer: PyTorch ${peer.torch_version}${peer.numpy_version ? `, NumPy ${peer.numpy_version}` : ""}, BLAS ${peer.blas ?? "unknown"}`);
  const fmt = (x: number | null | undefined, d = 1) => (x === null || x === undefined ? "—" : x.toFixed(d));
  if (results.matmul) {
    lines.push("", "| shape | backend | GFLOP/s | packed | PyTorch | NumPy | best / PyTorch | % of peak |", "|---|---|---|---|---|---|---|---|");
    for (const r of results.matmul as MatmulRow[]) {
      const pt = peerMatmul(r.T, r.K, r.N), np = peerMatmul(r.T, r.K, r.N, "numpy_matmul");
      const bestG = Math.max(r.gflops, r.packedGflops ?? 0);
      lines.push(`| [${r.T},${r.K}]x[${r.K},${r.N}] | ${r.backend} | ${fmt(r.gflops)} | ${fmt(r.packedGflops)} | ${fmt(pt)} | ${fmt(np)} | ${pt ? (bestG / pt).toFixed(2) : "—"} | ${peak ? ((100 * bestG) / peak.gflopsAll).toFixed(0) + "%" : "—"} |`);
    }
  }
  if (results.overhead) {
    lines.push("", "| [16,768] add | µs per op (in scope) | µs per op (no scope) |", "|---|---|---|");
    for (const r of results.overhead as { backend: string; microseconds: number; unscopedMicroseconds: number }[]) lines.push(`| ${r.backend} | ${r.microseconds.toFixed(2)} | ${r.unscopedMicroseconds.toFixed(2)} |`);
    if (peer?.add16x768_us) lines.push(`| PyTorch | ${peer.add16x768_us.toFixed(2)} | |`);
  }
  if (results.gpt2) {
    const g = (results.gpt2 as { backend: string; seconds: Record<string, number> });
    lines.push("", `| GPT-2-small shape (${g.backend}) | circuitscope s | PyTorch s | ratio |`, "|---|---|---|---|");
    for (const [k, v] of Object.entries(g.seconds)) {
      const p = (peer?.gpt2?.[k] ?? (k === "runWithCache_T128" ? peer?.gpt2?.forward_T128 : undefined)) as number | undefined;
      lines.push(`| ${k} | ${v.toFixed(3)} | ${fmt(p, 3)}${k === "runWithCache_T128" && p ? " (plain forward)" : ""} | ${p ? (p / v).toFixed(2) + "x" : "—"} |`);
    }
    const gx = results.gpt2 as { cacheOverhead: number; generateMsPerToken: number };
    const pg = peer?.gpt2?.generate_ms_per_token as number | undefined;
    lines.push(`| generation, ms per new token | ${gx.generateMsPerToken.toFixed(1)} | ${fmt(pg)} | ${pg ? (pg / gx.generateMsPerToken).toFixed(2) + "x" : "—"} |`);
    lines.push("", `full activation cache costs ${(gx.cacheOverhead * 100).toFixed(1)}% over a plain forward at T=128`);
  }
  if (results.patching) {
    const p = results.patching as { cells: number; seconds: number; msPerPatchedForward: number; transformerLensQuotedSeconds: number; speedupVsQuoted: number; loadavg: number };
    lines.push("", "| activation patching, resid_pre 12×20 (GPT-2-small shape) | circuitscope | TransformerLens (quoted, not measured) | ratio |", "|---|---|---|---|");
    lines.push(`| full sweep, s | ${p.seconds.toFixed(2)} | ${p.transformerLensQuotedSeconds} | ${p.speedupVsQuoted.toFixed(1)}x |`);
    lines.push(`| ms per patched forward | ${p.msPerPatchedForward.toFixed(1)} | 111 | ${(111 / p.msPerPatchedForward).toFixed(1)}x |`, "", `load average during the run: ${p.loadavg.toFixed(2)}`);
  }
  if (results.grokking) {
    const g = results.grokking as { backend: string; secondsPerStep: number; peerSecondsPerStep: number | null; batch: number; loadavg: number };
    const pt = g.peerSecondsPerStep;
    lines.push("", `| grokking (${g.backend}, batch ${g.batch}) | circuitscope s | PyTorch s | ratio |`, "|---|---|---|---|");
    lines.push(`| grokking full-batch step (p=113) | ${g.secondsPerStep.toFixed(4)} | ${fmt(pt, 4)} | ${pt ? (pt / g.secondsPerStep).toFixed(2) + "x" : "—"} |`, "", `load average during the grokking run: ${g.loadavg.toFixed(2)}`);
  }
  process.stdout.write(lines.join("\n") + "\n");
}
process.exit(0);
