// The engine in a real browser: the browser bundle (src/browser.ts, built with esbuild) is served
// from a local server with cross-origin isolation and run in headless Chromium via playwright-core.
// Checks: WebAssembly matmul (single-threaded on the page, two threads inside a Web Worker) matches
// the TypeScript reference, autodiff works, and a hooked transformer runs with a cache.
// Skips only when no Chromium is installed (CI installs Debian's chromium).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";

const CHROMIUM = process.env.CIRCUITSCOPE_CHROMIUM ?? "/usr/bin/chromium";
const root = fileURLToPath(new URL("../../", import.meta.url));
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;

const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
import * as cs from "./circuitscope.js";
window.runChecks = async () => {
  const out = { isolated: globalThis.crossOriginIsolated };
  const rng = new cs.Rng(7);
  const a = cs.randn([37, 129], { rng }), b = cs.randn([129, 67], { rng });
  cs.setBackend("ts");
  const ref = a.matmul(b).toArray();
  out.wasm = cs.setBackend("wasm").description;
  const got = a.matmul(b).toArray();
  let maxAbs = 0, err = 0;
  for (let i = 0; i < ref.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(ref[i])); err = Math.max(err, Math.abs(ref[i] - got[i])); }
  out.matmulRelErr = err / maxAbs;
  const x = cs.tensor([1, -2, 3]).requireGrad();
  cs.backward(x.square().sum());
  out.grad = Array.from(x.grad.toArray());
  const model = new cs.HookedTransformer(cs.makeConfig({ d_model: 16, n_layers: 2, n_heads: 4, d_vocab: 50, n_ctx: 32 })).initWeights(1);
  const { logits, cache } = cs.noGrad(() => model.runWithCache([[1, 2, 3, 4, 5]]));
  out.logitsShape = logits.shape;
  out.cacheHasPattern = cache.has("blocks.1.attn.hook_pattern");
  out.workerResult = await new Promise((resolve, reject) => {
    const w = new Worker("./worker.js", { type: "module" });
    w.onmessage = (e) => resolve(e.data);
    w.onerror = (e) => reject(new Error(e.message));
  });
  return out;
};
window.ready = true;
</script>`;

const WORKER = `import * as cs from "./circuitscope.js";
const rng = new cs.Rng(3);
const a = cs.randn([256, 384], { rng }), b = cs.randn([384, 320], { rng });
cs.setBackend("ts");
const ref = a.matmul(b).toArray();
const backend = cs.createWasmBackend({ threads: 2 });
cs.setBackend(backend);
const got = a.matmul(b).toArray();
let maxAbs = 0, err = 0;
for (let i = 0; i < ref.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(ref[i])); err = Math.max(err, Math.abs(ref[i] - got[i])); }
postMessage({ description: backend.description, threads: backend.threads, relErr: err / maxAbs });
`;

test("the engine runs in headless Chromium: wasm matmul (page and 2-thread worker), autodiff, hooked model", { skip, timeout: 120_000 }, async () => {
  const { build } = await import("esbuild");
  const { chromium } = await import("playwright-core");
  const dir = mkdtempSync(join(tmpdir(), "cs-browser-"));
  let server: Server | undefined;
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  try {
    await build({ entryPoints: [join(root, "src/browser.ts")], bundle: true, format: "esm", platform: "browser", target: "es2022", outfile: join(dir, "circuitscope.js"), logLevel: "error" });
    const files: Record<string, [string, string]> = {
      "/": [PAGE, "text/html"],
      "/circuitscope.js": [readFileSync(join(dir, "circuitscope.js"), "utf8"), "text/javascript"],
      "/worker.js": [WORKER, "text/javascript"],
    };
    server = createServer((req, res) => {
      const f = files[req.url ?? "/"];
      if (!f) { res.writeHead(404).end(); return; }
      // Cross-origin isolation, so SharedArrayBuffer (and so wasm threads) are allowed.
      res.writeHead(200, { "content-type": f[1], "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" });
      res.end(f[0]);
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, { timeout: 30_000 });
    const r = await page.evaluate(() => (window as unknown as { runChecks(): Promise<Record<string, any>> }).runChecks());
    assert.deepEqual(errors, []);
    assert.equal(r.isolated, true);
    assert.match(r.wasm, /^wasm \(SIMD128/);
    assert.ok(r.matmulRelErr < 1e-5, `page wasm matmul relative error ${r.matmulRelErr}`);
    assert.deepEqual(r.grad, [2, -4, 6]);
    assert.deepEqual(r.logitsShape, [1, 5, 50]);
    assert.equal(r.cacheHasPattern, true);
    assert.equal(r.workerResult.threads, 2, `worker backend: ${r.workerResult.description}`);
    assert.ok(r.workerResult.relErr < 1e-5, `worker wasm matmul relative error ${r.workerResult.relErr}`);
  } finally {
    await browser?.close();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
