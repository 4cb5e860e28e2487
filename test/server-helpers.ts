// Shared by the workbench tests: a tiny GPT-2-shaped model with a character tokenizer saved to a
// temp folder in Hugging Face layout (built in milliseconds, random weights large enough for sharp
// attention), and `circuitscope serve` on it as a real child process on a free port.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { saveHF } from "../src/io/snapshot.js";
import { writeTokenizerFolder } from "../src/io/tokenizer.js";
import { CharTokenizer } from "../src/train/char-tokenizer.js";
import { makeConfig } from "../src/model/config.js";
import { HookedTransformer } from "../src/model/transformer.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { Rng } from "../src/tensor/rng.js";
import { repo } from "./cli-helpers.js";

const ALPHABET = " .,!?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** A snapshot folder (config.json, model.safetensors, tokenizer.json) of a 2-layer, 2-head GPT-2 over characters. */
export function tinySnapshot(prefix: string): { dir: string; folder: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const folder = path.join(dir, "tiny-char-gpt2");
  const tok = new CharTokenizer([...ALPHABET].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  const model = new HookedTransformer(makeConfig({ architecture: "gpt2", d_model: 16, n_layers: 2, n_heads: 2, d_mlp: 32, d_vocab: tok.vocabSize, n_ctx: 64 })).initWeights(3);
  // Larger weights than GPT-2's initialisation, so attention is not uniform and patching moves the metric.
  noGrad(() => { const g = new Rng(11); for (const p of model.parameters()) if (p.ndim === 2) { for (let i = 0; i < p.size; i++) p.data[i] = 0.4 * g.normal(); p.version++; } });
  saveHF(model, folder);
  writeTokenizerFolder(folder, tok.toHFTokenizerJson());
  return { dir, folder };
}

export interface Served { url: string; doc: Record<string, unknown>; child: ChildProcess; stderr: () => string; stop(signal?: NodeJS.Signals): Promise<number | null> }

/** Start `circuitscope serve folder --port 0 --json` and wait for its JSON line on stdout. */
export function startServe(folder: string, ...extra: string[]): Promise<Served> {
  const child = spawn(process.execPath, [path.join(repo, "dist/src/cli/main.js"), "serve", folder, "--port", "0", "--json", ...extra], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stderr!.on("data", (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => { if (child.exitCode === null) child.kill(signal); return exited; };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`serve did not start in 60 s; stderr:\n${err}`)); }, 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        const doc = JSON.parse(out.slice(0, nl)) as Record<string, unknown>;
        if (typeof doc.url !== "string") throw new Error("no url");
        resolve({ url: doc.url as string, doc, child, stderr: () => err, stop });
      } catch (e) { child.kill("SIGKILL"); reject(new Error(`serve printed ${out}: ${(e as Error).message}; stderr:\n${err}`)); }
    });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`serve exited with ${code}; stderr:\n${err}`)); });
  });
}

/** POST a JSON body (or a raw string) and return status and parsed JSON. */
export async function post<T = Record<string, unknown>>(url: string, body: unknown): Promise<{ status: number; doc: T }> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: res.status, doc: (await res.json()) as T };
}
