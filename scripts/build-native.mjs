// Builds the native addon (native/) with node-gyp; run by `npm install` and `npm run build:native`.
// It never fails the install: without a compiler or headers circuitscope runs on the WASM/TS
// backends, and this script says so in one line. --verbose shows the compiler output.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const verbose = process.argv.includes("--verbose");
// `npm run build:native` always rebuilds; the install script skips an addon newer than its sources
// (npx links this folder as a package and runs install again: no reason to compile twice).
const force = verbose || process.argv.includes("--force");
const retry = "npm run build:native";

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  // npm's own copy: next to the npm CLI that runs us, or the system-wide install.
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  candidates.push("/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js");
  candidates.push(join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  try { candidates.push(createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js")); } catch { /* not a dependency */ }
  return candidates.find((p) => existsSync(p)) ?? null;
}

function fail(reason) {
  console.log(`circuitscope: the native addon could not be built (${reason}); the WASM/TS backend will be used. Retry with: ${retry}`);
  process.exit(0);
}

/** True when the built addon is newer than every source file and binding.gyp. */
function upToDate(addonPath) {
  if (!existsSync(addonPath)) return false;
  const built = statSync(addonPath).mtimeMs;
  const src = join(nativeDir, "src");
  const inputs = [join(nativeDir, "binding.gyp"), ...readdirSync(src).map((f) => join(src, f))];
  return inputs.every((f) => statSync(f).mtimeMs < built);
}

function main() {
  const addon = join(nativeDir, "build", "Release", "circuitscope_native.node");
  if (!force && upToDate(addon)) { console.log("circuitscope: native backend up to date (npm run build:native rebuilds it)"); return; }
  const gyp = findNodeGyp();
  if (!gyp) fail("node-gyp not found");
  const args = [gyp, "rebuild", "--release"];
  const nodedir = process.env.npm_config_nodedir;
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  else if (existsSync("/usr/include/node/node_api.h")) args.push("--nodedir=/usr");
  const res = spawnSync(process.execPath, args, { cwd: nativeDir, stdio: verbose ? "inherit" : "pipe", encoding: "utf8" });
  if (res.error) fail(res.error.message);
  if (res.status !== 0) {
    if (!verbose) {
      const out = `${res.stdout ?? ""}${res.stderr ?? ""}`.split("\n").filter((l) => /error/i.test(l));
      fail(out[0]?.trim().slice(0, 200) || `node-gyp exited with ${res.status}`);
    }
    fail(`node-gyp exited with ${res.status}`);
  }
  // Load it in a child with every symbol bound now (Node loads addons lazily, which would hide a
  // missing symbol until first use), and name what will actually run on this CPU.
  const addonPath = join(nativeDir, "build", "Release", "circuitscope_native.node");
  const probe = `const a = require(${JSON.stringify(addonPath)}); const i = a.init(new Float64Array(64));
    console.log((i.avx2 ? "AVX2/FMA" : "portable C") + ", " + i.threads + " thread" + (i.threads === 1 ? "" : "s"));`;
  const check = spawnSync(process.execPath, ["-e", probe], { env: { ...process.env, LD_BIND_NOW: "1" }, encoding: "utf8" });
  if (check.status !== 0) {
    const why = `${check.stderr ?? ""}`.split("\n").find((l) => l.trim()) ?? `exit ${check.status}`;
    fail(`built but does not load: ${why.trim().slice(0, 200)}`);
  }
  console.log(`circuitscope: native backend built (${check.stdout.trim()})`);
}

try { main(); } catch (e) { fail(e instanceof Error ? e.message : String(e)); }
