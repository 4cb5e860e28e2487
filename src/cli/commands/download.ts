// `circuitscope download <id>[@rev]`: a hub model into the Hugging Face cache (resuming partial
// files), and resolveModelArg, through which every command's model argument goes before loading.
import { resolveModel, downloadSnapshot, type DownloadProgress } from "../../io/hub-download.js";
import { hubCacheDir } from "../../io/hub-cache.js";
import { UsageError } from "../args.js";
import { progress, type Output } from "../io.js";
import type { Command } from "../command.js";

/** Byte progress per file on stderr, one bar per file. */
function fileBars(): (p: DownloadProgress) => void {
  let file = "", seen = 0, bar: ReturnType<typeof progress> | null = null;
  return (p) => {
    if (p.file !== file) { bar?.done(); file = p.file; seen = 0; bar = progress(`${p.file} (bytes)`, p.total); }
    bar!.tick(p.done - seen);
    seen = p.done;
    if (p.done === p.total) { bar!.done(); bar = null; file = ""; }
  };
}

/**
 * A command's model argument made loadable: a folder stays as it is; a hub id is found in the cache
 * or downloaded into it (progress on stderr), after which loadPretrained(id) reads it from there.
 */
export async function resolveModelArg(text: string, out: Output): Promise<string> {
  return resolveModel(text, { onProgress: fileBars(), onNote: (m) => out.info(m) });
}

const USAGE = `circuitscope download <org/name>[@revision] [--revision R] [--json]
  downloads config.json, the tokenizer files and model.safetensors (or the index and its shards)
  into the Hugging Face cache ($HF_HUB_CACHE, default $HF_HOME/hub = ~/.cache/huggingface/hub),
  where transformers finds them too; partial files are resumed.
  Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (private or gated repos),
  HF_HUB_OFFLINE=1 (no network: fails, naming the cache path)`;

export const download: Command = {
  name: "download",
  summary: "download a model from the Hugging Face hub into the cache (resumable)",
  usage: USAGE,
  async run(pos, flags, out) {
    const revision = flags.str("revision");
    flags.checkUnknown();
    const [id, ...extra] = pos;
    if (id === undefined) throw new UsageError("download needs a hub model id (org/name)");
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    const cacheDir = hubCacheDir();
    const report = await downloadSnapshot(id, { ...(revision !== undefined ? { revision } : {}), cacheDir, onProgress: fileBars() });
    const fetched = report.files.filter((f) => f.fetched);
    const doc = { id: report.repo, ...report, cacheDir, bytes: report.files.reduce((s, f) => s + f.bytes, 0), fetchedBytes: fetched.reduce((s, f) => s + f.bytes - f.resumedFrom, 0) };
    out.result(doc, () => [
      `${report.repo}@${report.revision} = commit ${report.commit}`,
      ...report.files.map((f) => `  ${f.name.padEnd(32)} ${String(f.bytes).padStart(12)} bytes  ${f.fetched ? (f.resumedFrom ? `resumed from byte ${f.resumedFrom}` : "downloaded") : "already cached"}${f.breaks ? ` (${f.breaks} broken transfer${f.breaks === 1 ? "" : "s"} resumed)` : ""}`),
      `snapshot: ${report.folder}`,
    ].join("\n"));
  },
};
