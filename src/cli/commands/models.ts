// `circuitscope models`: the models in the Hugging Face cache, with their revisions, refs, files and size.
import { hubCacheDir, listCachedModels } from "../../io/hub-cache.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

export const models: Command = {
  name: "models",
  summary: "list the models in the Hugging Face cache (ids, revisions, size, files)",
  usage: "circuitscope models [--json]   (the cache is $HF_HUB_CACHE, default $HF_HOME/hub = ~/.cache/huggingface/hub)",
  run(pos, flags, out) {
    flags.checkUnknown();
    if (pos.length) throw new UsageError(`unexpected arguments: ${pos.join(" ")}`);
    const cacheDir = hubCacheDir();
    const list = listCachedModels(cacheDir);
    out.result({ cacheDir, models: list }, () => list.length === 0 ? `no models in ${cacheDir}` : [
      `${list.length} model${list.length === 1 ? "" : "s"} in ${cacheDir}`,
      ...list.flatMap((m) => [
        `${m.id}  ${mb(m.bytes)}${m.incomplete ? `  (${m.incomplete} partial download${m.incomplete === 1 ? "" : "s"})` : ""}`,
        ...m.revisions.map((r) => `  ${r.commit.slice(0, 12)}${r.refs.length ? ` (${r.refs.join(", ")})` : ""}${r.complete ? "" : " incomplete"}: ${r.files.map((f) => f.name).join(", ")}`),
      ]),
    ].join("\n"));
  },
};
