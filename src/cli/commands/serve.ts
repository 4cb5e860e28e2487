// `circuitscope serve <snapshot-folder> [--port 8080] [--host 127.0.0.1]`: the web workbench. Loads
// the snapshot and its tokenizer once, then serves the page (src/web/) and its JSON API
// (src/server/) until SIGINT or SIGTERM. With --json, one JSON document ({url, model, …}) is printed
// on stdout once the server listens; request log lines go to stderr.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import { Workbench } from "../../server/workbench.js";
import { createWorkbenchServer } from "../../server/server.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { loadWithTokenizer } from "../legacy-inputs.js";

const USAGE = `circuitscope serve <snapshot-folder> [--port 8080] [--host 127.0.0.1] [--max-tokens 128] [--data-dir DIR] [--quiet] [--json]
  --port P         port to listen on (default 8080; 0 picks a free one)
  --host H         address to bind (default 127.0.0.1, this machine only)
  --max-tokens N   longest prompt accepted (default min(n_ctx, 128))
  --data-dir DIR   the one folder whose files requests may name (a corpus for neurons); default: none
  --quiet          no per-request log lines on stderr
  --json           print {url, model, host, port, …} on stdout once listening`;

// This file runs as dist/src/cli/commands/serve.js; the repository is four folders up.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
export const WEB_BUNDLE = path.join(root, "dist/web/app.js");

/** The page's script: the bundle `npm run build` writes, else built now from src/web/ with esbuild. */
async function pageScript(info: (m: string) => void): Promise<string> {
  if (fs.existsSync(WEB_BUNDLE)) return fs.readFileSync(WEB_BUNDLE, "utf8");
  const entry = path.join(root, "src/web/main.ts");
  let esbuild: typeof import("esbuild");
  try { esbuild = await import("esbuild"); } catch {
    throw new Error(`no page bundle at ${WEB_BUNDLE} and esbuild is not installed to build it (run npm run build:web in a development checkout)`);
  }
  info(`no ${WEB_BUNDLE}; bundling ${entry}`);
  const r = await esbuild.build({ entryPoints: [entry], bundle: true, format: "esm", platform: "browser", target: "es2022", write: false, logLevel: "error" });
  return r.outputFiles[0]!.text;
}

export const serve: Command = {
  name: "serve",
  summary: "the web workbench: a local server with attention, activations, logit lens and patching views",
  usage: USAGE,
  async run(pos, flags, out) {
    const port = flags.num("port", 8080);
    const host = flags.str("host", "127.0.0.1");
    const maxTokens = flags.num("max-tokens", 128);
    const quiet = flags.bool("quiet");
    const dataDir = flags.str("data-dir");
    flags.checkUnknown();
    const [folder, ...extra] = pos;
    if (folder === undefined) throw new UsageError("serve needs a snapshot folder");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be an integer in 0..65535, got ${port}`);
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new UsageError(`--max-tokens must be a positive integer, got ${maxTokens}`);

    const { model, tokenizer, config } = loadWithTokenizer(folder);
    if (dataDir !== undefined && !fs.statSync(dataDir, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--data-dir: ${dataDir} is not a folder`);
    const wb = new Workbench(model, tokenizer, config, path.basename(path.resolve(folder)), { maxTokens, ...(dataDir !== undefined ? { dataDir } : {}) });
    const script = await pageScript(out.info);
    const server = createWorkbenchServer(wb, { script, ...(quiet ? {} : { log: out.info }) });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e: NodeJS.ErrnoException) => reject(e.code === "EADDRINUSE" ? new UsageError(`--port ${port}: ${host}:${port} is already in use`) : e));
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    const url = `http://${addr.family === "IPv6" ? `[${addr.address}]` : addr.address}:${addr.port}/`;
    out.info(`circuitscope workbench for ${folder} at ${url} (Ctrl-C stops it)`);
    if (out.json) process.stdout.write(JSON.stringify({ url, host: addr.address, port: addr.port, model: folder, pid: process.pid,
      config: wb.info().config, maxTokens: wb.maxTokens }) + "\n");
    else process.stdout.write(`${url}\n`);
    // Serve until a signal; then stop accepting, close idle connections and resolve (exit code 0).
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        out.info(`${sig}: stopping the workbench server`);
        process.off("SIGINT", onInt); process.off("SIGTERM", onTerm);
        server.close(() => resolve());
        server.closeAllConnections();
      };
      const onInt = () => stop("SIGINT"), onTerm = () => stop("SIGTERM");
      process.on("SIGINT", onInt); process.on("SIGTERM", onTerm);
    });
  },
};
