// `circuitscope convert <llama2c.bin> --out <folder>`: write a llama2.c checkpoint as a Hugging Face
// Llama snapshot (config.json, model.safetensors, tokenizer.json, tokenizer_config.json), then load
// the snapshot back and compare its logits with the direct load's, so the report says the two agree.
import fs from "node:fs";
import { findLlama2c, loadLlama2c } from "../../io/llama2c.js";
import { loadPretrained, saveHF } from "../../io/snapshot.js";
import { writeTokenizerFolder } from "../../io/tokenizer.js";
import { noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import type { HookedTransformer } from "../../model/transformer.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";

const USAGE = `circuitscope convert <llama2c.bin> --out <folder> [--tokenizer tok.bin] [--json]
  --out F        the Hugging Face snapshot folder to write (created if missing; its files are replaced)
  --tokenizer T  the llama2.c tokenizer file (default: the one tok*.bin beside the checkpoint, if any)`;

/** Positions the round-trip check runs: BOS, then ids spread over the vocabulary. */
const PROBE_LEN = 16;

function logits(model: HookedTransformer, ids: number[]): Float32Array | Float64Array {
  return noGrad(() => scope(() => model.forward([ids]).toArray() as Float32Array | Float64Array));
}

export const convert: Command = {
  name: "convert",
  summary: "write a llama2.c checkpoint (and tokenizer) as a Hugging Face Llama snapshot folder",
  usage: USAGE,
  run(pos, flags, out) {
    const outDir = flags.str("out");
    let tokPath = flags.str("tokenizer");
    flags.checkUnknown();
    const [bin, ...extra] = pos;
    if (bin === undefined) throw new UsageError("convert needs a llama2.c checkpoint (.bin)");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (outDir === undefined) throw new UsageError("convert needs --out <folder>");
    if (!fs.existsSync(bin) || !fs.statSync(bin).isFile()) throw new UsageError(`${bin}: no such file (expected a llama2.c .bin checkpoint)`);
    if (tokPath === undefined) {
      tokPath = findLlama2c(bin)?.tokenizerPath;
      out.info(tokPath ? `tokenizer: ${tokPath} (found beside the checkpoint)` : `no --tokenizer and no single tok*.bin beside ${bin}: the snapshot will have no tokenizer`);
    }

    const direct = loadLlama2c(bin, { tokenizerPath: tokPath });
    const h = direct.header;
    out.info(`read ${bin}: dim ${h.dim}, hidden ${h.hidden_dim}, ${h.n_layers} layers, ${h.n_heads} heads (${h.n_kv_heads} KV), vocab ${h.vocab_size}, seq_len ${h.seq_len}, ${h.sharedClassifier ? "shared" : "separate"} classifier`);
    saveHF(direct.model, outDir, { baseConfig: direct.hfConfig });
    if (direct.tokenizerFiles) writeTokenizerFolder(outDir, direct.tokenizerFiles.tokenizerJson, direct.tokenizerFiles.tokenizerConfig);

    // The written snapshot, loaded back, must give the direct load's logits.
    const back = loadPretrained(outDir);
    const V = h.vocab_size, T = Math.min(PROBE_LEN, h.seq_len);
    const ids = Array.from({ length: T }, (_, i) => (i === 0 ? 1 % V : (3 + 37 * i) % V));
    const a = logits(direct.model, ids), b = logits(back.model, ids);
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    let tokenizerAgrees: boolean | null = null;
    const sample = "Once upon a time, a café owner said: \"naïve 日本\"\n";
    if (direct.tokenizer && back.tokenizer) {
      const x = direct.tokenizer.encode(sample), y = back.tokenizer.encode(sample);
      tokenizerAgrees = x.length === y.length && x.every((v, i) => v === y[i]) && back.tokenizer.decode(y) === direct.tokenizer.decode(x);
    }
    if (tokenizerAgrees === false) throw new Error(`${outDir}: the written tokenizer.json does not encode/decode ${JSON.stringify(sample)} as the direct load does`);
    const files = fs.readdirSync(outDir).sort();
    const doc = {
      source: { checkpoint: bin, tokenizer: tokPath ?? null, header: h },
      out: outDir,
      files,
      check: { positions: T, maxAbsLogitDiff: maxDiff, identical: maxDiff === 0, tokenizerAgrees },
    };
    out.result(doc, () => [
      `wrote ${outDir}: ${files.join(", ")}`,
      `reloaded: max |logit difference| over ${T} positions × ${V} tokens = ${maxDiff.toExponential(2)}${maxDiff === 0 ? " (identical)" : ""}`,
      tokenizerAgrees === null ? "no tokenizer written" : `tokenizer.json ${tokenizerAgrees ? "encodes and decodes a test text as the direct load does" : "DIFFERS from the direct load on a test text"}`,
    ].join("\n"));
  },
};
