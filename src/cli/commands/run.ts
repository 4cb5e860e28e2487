// `circuitscope run <snapshot-folder> "<prompt>"`: load a Hugging Face snapshot folder (or a llama2.c .bin), show the
// model's most likely next tokens after the prompt, and optionally generate a continuation.
// Loading and progress messages go to stderr; the result to stdout (one JSON document with --json).
import { loadPretrained } from "../../io/snapshot.js";
import { noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { generate, type SamplingOptions } from "../../model/generate.js";
import { encodeText, predictions } from "../../model/tokens.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { progress } from "../io.js";

const USAGE = `circuitscope run <snapshot-folder> "<prompt>" [--top 10] [--generate N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--no-bos] [--json]
  --top N          how many next-token predictions to list (default 10)
  --generate N     also generate N tokens (default 0); stops early at the tokenizer's EOS
  --temperature T  sampling temperature; 0 (the default) is greedy
  --top-k K        sample among the K most likely tokens only
  --top-p P        sample from the smallest set of most likely tokens with total probability >= P
  --seed S         seed of the sampler (default 0), so runs repeat exactly
  --no-bos         do not put the tokenizer's BOS token before the prompt`;

/** A probability as a percentage, in exponent form when it would round to 0.00%. */
const percent = (p: number) => (p >= 5e-5 ? `${(p * 100).toFixed(2)}%` : `${(p * 100).toExponential(2)}%`);

const intFlag = (name: string, v: number, min = 0) => {
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${v}`);
  return v;
};

export const run: Command = {
  name: "run",
  summary: "show a snapshot model's next-token predictions for a prompt, and generate from it",
  usage: USAGE,
  run(pos, flags, out) {
    const top = intFlag("top", flags.num("top", 10), 1);
    const newTokens = intFlag("generate", flags.num("generate", 0));
    const temperature = flags.num("temperature", 0), seed = intFlag("seed", flags.num("seed", 0));
    const topKFlag = flags.str("top-k"), topPFlag = flags.str("top-p");
    const sampling: SamplingOptions = {
      temperature,
      topK: topKFlag === undefined ? undefined : intFlag("top-k", Number(topKFlag), 1),
      topP: topPFlag === undefined ? undefined : Number(topPFlag),
    };
    if (!(temperature >= 0)) throw new UsageError(`--temperature must be >= 0, got ${temperature}`);
    if (sampling.topP !== undefined && !(sampling.topP > 0 && sampling.topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${topPFlag}`);
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, prompt, ...extra] = pos;
    if (folder === undefined || prompt === undefined) throw new UsageError("run needs a snapshot folder and a prompt");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")} (quote the prompt)`);

    out.info(`loading ${folder}`);
    const t0 = performance.now();
    const { model, tokenizer, config } = loadPretrained(folder);
    if (!tokenizer) throw new Error(`${folder} has no tokenizer.json, so a text prompt cannot be tokenized`);
    out.info(`loaded ${config.architecture} (${config.n_layers} layers, d_model ${config.d_model}, vocab ${config.d_vocab}) in ${(performance.now() - t0).toFixed(0)} ms`);

    const ids = encodeText(tokenizer, prompt, noBos ? { prependBos: false } : {});
    if (ids.length === 0) throw new UsageError("the prompt has no tokens (and the tokenizer has no BOS token)");
    const str = (id: number) => tokenizer.decode([id]);

    // Next-token distribution at the prompt's last position: softmax over the vocabulary.
    const row = noGrad(() => scope(() => model.forward([ids], { lastPositionOnly: true }).select(1, 0).toArray() as Float32Array));
    const next = predictions(tokenizer, row, top).top;

    let generation = null;
    if (newTokens > 0) {
      // A model with learned positions keeps generating past n_ctx on the last n_ctx tokens (nanoGPT's sampler).
      const window = config.positional_embedding_type === "standard" ? config.n_ctx : null;
      const slides = window !== null && ids.length + newTokens > window;
      if (slides) out.info(`${ids.length} prompt + ${newTokens} new tokens exceed n_ctx = ${window}: each later step sees the last ${window} tokens`);
      const bar = progress("generating", newTokens);
      const g0 = performance.now();
      const res = generate(model, [ids], {
        ...sampling, maxNewTokens: newTokens, seed, contextOverflow: "slide",
        eosTokenId: tokenizer.eosTokenId ?? undefined,
        onStep: () => bar.tick(),
      });
      const ms = performance.now() - g0;
      bar.done();
      const gen = res.newTokens[0]!;
      generation = {
        tokens: gen.map((id, i) => ({ id, str: str(id), logprob: res.logprobs[0]![i]! })),
        text: tokenizer.decode(gen),
        stopReason: res.stopReasons[0]!,
        sampling: temperature === 0 ? { greedy: true } : { greedy: false, temperature, topK: sampling.topK ?? null, topP: sampling.topP ?? null, seed },
        msPerToken: gen.length > 0 ? ms / gen.length : 0,
        slidingWindow: slides ? window : null,
      };
      out.info(`generated ${gen.length} tokens in ${ms.toFixed(0)} ms (${generation.msPerToken.toFixed(1)} ms/token)`);
    }

    const doc = {
      model: { folder, architecture: config.architecture, n_layers: config.n_layers, d_model: config.d_model, d_vocab: config.d_vocab },
      prompt,
      promptTokens: ids.map((id) => ({ id, str: str(id) })),
      top: next.map((p, i) => ({ rank: i + 1, id: p.token, str: p.str, prob: p.prob, logit: p.logit })),
      generation,
    };
    out.result(doc, () => {
      const lines = [
        `prompt: ${doc.promptTokens.length} tokens ${doc.promptTokens.map((t) => JSON.stringify(t.str)).join(" ")}`,
        "",
        `top ${top} next tokens:`,
        `${"rank".padStart(4)}  ${"id".padStart(6)}  ${"prob".padStart(9)}  ${"logit".padStart(8)}  token`,
        ...doc.top.map((t) => `${String(t.rank).padStart(4)}  ${String(t.id).padStart(6)}  ${percent(t.prob).padStart(9)}  ${t.logit.toFixed(3).padStart(8)}  ${JSON.stringify(t.str)}`),
      ];
      if (generation) {
        const how = generation.sampling.greedy ? "greedy" : `sampled, temperature ${temperature}, seed ${seed}`;
        const win = generation.slidingWindow === null ? "" : `, past n_ctx on the last ${generation.slidingWindow} tokens`;
        // Decoded as one sequence, so a tokenizer that joins words with spaces (WordLevel) puts one between prompt and continuation.
        const whole = tokenizer.decode([...tokenizer.encode(prompt, { addSpecialTokens: false }), ...generation.tokens.map((t) => t.id)]);
        lines.push("", `generated ${generation.tokens.length} tokens (${how}, ${generation.stopReason === "eos" ? "stopped at EOS" : "length limit"}${win}):`, whole);
      }
      return lines.join("\n");
    });
  },
};
