// Hub ids and the Hugging Face cache. A cache folder laid out as huggingface_hub lays it out (blobs,
// snapshot symlinks, refs) resolves "org/name", "org/name@tag" and a commit; a loopback hub
// (test/hub-server.ts: real node:http servers on 127.0.0.1 serving the API, resolve and LFS-storage
// routes) fills an empty cache in the same layout, with sha256 checks, resumed transfers (Range:
// bytes=N-), HF_TOKEN and HF_HUB_OFFLINE; the downloaded model gives the same logits as the folder it
// was served from. Then the CLI's download and models commands and a hub id as a command's model.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { noGrad } from "../src/tensor/autodiff.js";
import {
  downloadSnapshot, findCached, hubCacheDir, HubError, listCachedModels, loadPretrained, loadPretrainedAsync, loadSafetensors, parseHubId, resolveModel, saveSafetensors,
} from "../src/io/index.js";
import { gitSha1, LoopbackHub, sha256, type HubRepo } from "./hub-server.js";
import { noTinyGpt2 as skip, repo as repoRoot, tinyGpt2 } from "./cli-helpers.js";

const tmpDirs: string[] = [];
const tmp = (): string => { const d = fs.mkdtempSync(path.join(os.tmpdir(), "cs-hub-")); tmpDirs.push(d); return d; };
process.on("exit", () => { for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true }); });

const TOKENS = [[464, 412, 733, 417, 8765, 318, 287]]; // "The Eiffel Tower is in" in GPT-2's tokenizer
const logitsOf = (folderOrId: string, opts: Parameters<typeof loadPretrained>[1] = {}) => noGrad(() => loadPretrained(folderOrId, opts).model.forward(TOKENS)).toArray();
const COMMIT_A = "a".repeat(8) + "0123456789abcdef0123456789abcdef"; // 40 hex
const COMMIT_B = "b".repeat(8) + "0123456789abcdef0123456789abcdef";
const SNAPSHOT_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
const LFS = new Set(["model.safetensors", "tokenizer.json"]);
const read = (f: string) => skip ? Buffer.alloc(0) : fs.readFileSync(path.join(tinyGpt2, f));

/** tiny-gpt2's files as a hub repo: main → COMMIT_A, tag v1 → COMMIT_B. */
function tinyRepo(id: string): HubRepo {
  return { id, refs: { main: COMMIT_A, v1: COMMIT_B }, files: new Map([...SNAPSHOT_FILES, "generation_config.json"].map((f) => [f, read(f)])), lfs: new Set(LFS) };
}

/** Write a cache the way huggingface_hub does: blobs named by etag, relative symlinks, refs/<name>. */
function writeCache(cacheDir: string, repo: string, commit: string, files: Map<string, Buffer>, refs: string[]): void {
  const dir = path.join(cacheDir, `models--${repo.replace("/", "--")}`);
  for (const [name, bytes] of files) {
    const blob = path.join(dir, "blobs", LFS.has(name) ? sha256(bytes) : gitSha1(bytes));
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    fs.writeFileSync(blob, bytes);
    const link = path.join(dir, "snapshots", commit, name);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.relative(path.dirname(link), blob), link);
  }
  for (const r of refs) { fs.mkdirSync(path.join(dir, "refs"), { recursive: true }); fs.writeFileSync(path.join(dir, "refs", r), commit); }
}

describe("hub ids", () => {
  test("parseHubId: ids with and without a namespace and revision; paths are not ids", () => {
    assert.deepEqual(parseHubId("gpt2"), { repo: "gpt2" });
    assert.deepEqual(parseHubId("EleutherAI/pythia-70m@step1000"), { repo: "EleutherAI/pythia-70m", revision: "step1000" });
    assert.deepEqual(parseHubId("EleutherAI/pythia-70m", "main"), { repo: "EleutherAI/pythia-70m", revision: "main" });
    for (const p of ["../shared/models/tiny-gpt2", "/abs/path", "a/b/c", "./x", "org--x/y", "x.git"]) assert.equal(parseHubId(p), null, p);
    assert.throws(() => parseHubId("org/x@v1", "v2"), /revision given twice/);
  });

  test("hubCacheDir: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub", () => {
    assert.equal(hubCacheDir({ HF_HUB_CACHE: "/c", HF_HOME: "/h" }), "/c");
    assert.equal(hubCacheDir({ HF_HOME: "/h" }), path.join("/h", "hub"));
    assert.equal(hubCacheDir({}), path.join(os.homedir(), ".cache", "huggingface", "hub"));
  });
});

describe("a cache laid out like huggingface_hub's", { skip }, () => {
  const cache = tmp();
  const files = new Map(SNAPSHOT_FILES.map((f) => [f, read(f)]));
  before(() => {
    writeCache(cache, "org/tiny", COMMIT_A, files, ["main"]);
    writeCache(cache, "org/tiny", COMMIT_B, new Map([["config.json", files.get("config.json")!]]), ["v1"]); // a revision without weights
  });

  test("org/name, org/name@commit and { revision } resolve to the snapshot and load the same logits as the folder", () => {
    const want = logitsOf(tinyGpt2);
    assert.equal(findCached({ repo: "org/tiny" }, cache).folder, path.join(cache, "models--org--tiny", "snapshots", COMMIT_A));
    assert.deepEqual(logitsOf("org/tiny", { cacheDir: cache }), want);
    assert.deepEqual(logitsOf(`org/tiny@${COMMIT_A}`, { cacheDir: cache }), want);
    assert.deepEqual(logitsOf("org/tiny", { cacheDir: cache, revision: "main" }), want);
    const old = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = cache; // the environment variable, as transformers reads it
    try { assert.deepEqual(logitsOf("org/tiny"), want); } finally { if (old === undefined) delete process.env.HF_HUB_CACHE; else process.env.HF_HUB_CACHE = old; }
  });

  test("a revision without weights, an unknown ref and an absent model name the cache path looked at", () => {
    assert.throws(() => loadPretrained("org/tiny@v1", { cacheDir: cache }), (e: Error) => e instanceof HubError && e.message.includes(path.join(cache, "models--org--tiny", "snapshots", COMMIT_B, "model.safetensors")));
    assert.throws(() => loadPretrained("org/tiny@v9", { cacheDir: cache }), (e: Error) => e.message.includes(path.join(cache, "models--org--tiny", "refs", "v9")) && e.message.includes("npx circuitscope download org/tiny@v9"));
    assert.throws(() => loadPretrained("org/absent", { cacheDir: cache }), (e: Error) => e.message.includes(path.join(cache, "models--org--absent", "refs", "main")) && /loadPretrainedAsync/.test(e.message));
  });

  test("listCachedModels: ids, commits with their refs, files, completeness and size on disk", () => {
    const [m, ...rest] = listCachedModels(cache);
    assert.equal(rest.length, 0);
    assert.equal(m!.id, "org/tiny");
    const blobs = fs.readdirSync(path.join(cache, "models--org--tiny", "blobs"));
    assert.equal(m!.bytes, blobs.reduce((s, b) => s + fs.statSync(path.join(cache, "models--org--tiny", "blobs", b)).size, 0));
    assert.deepEqual(m!.revisions.map((r) => [r.commit, r.refs, r.complete, r.files.length]), [[COMMIT_A, ["main"], true, SNAPSHOT_FILES.length], [COMMIT_B, ["v1"], false, 1]]);
  });
});

describe("downloading from a loopback hub", { skip }, () => {
  let hub: LoopbackHub;
  const base = () => ({ endpoint: hub.endpoint, env: {} as NodeJS.ProcessEnv });
  const storageGets = () => hub.requests.filter((r) => r.server === "storage" && r.method === "GET");
  const modelSha = sha256(read("model.safetensors"));
  before(async () => { hub = await new LoopbackHub([tinyRepo("org/tiny"), tinyRepo("gpt2"), binOnlyRepo(), shardedRepo()]).start(); });
  after(async () => { await hub.stop(); });

  test("into an empty cache: huggingface_hub's layout, LFS blobs named by their sha256, the same logits as the served folder", async () => {
    const cache = tmp();
    const folder = await resolveModel("org/tiny", { ...base(), cacheDir: cache });
    const dir = path.join(cache, "models--org--tiny");
    assert.equal(folder, path.join(dir, "snapshots", COMMIT_A));
    assert.equal(fs.readFileSync(path.join(dir, "refs", "main"), "utf8"), COMMIT_A);
    assert.deepEqual(fs.readdirSync(folder).sort(), [...SNAPSHOT_FILES].sort(), "generation_config.json is not fetched");
    for (const f of SNAPSHOT_FILES) {
      const bytes = read(f), etag = LFS.has(f) ? sha256(bytes) : gitSha1(bytes);
      assert.equal(fs.readlinkSync(path.join(folder, f)), path.join("..", "..", "blobs", etag), `${f} links to its blob`);
      assert.equal(sha256(fs.readFileSync(path.join(dir, "blobs", etag))), sha256(bytes), `${f} contents`);
    }
    assert.deepEqual(logitsOf(folder), logitsOf(tinyGpt2));
    assert.deepEqual(logitsOf("org/tiny", { cacheDir: cache }), logitsOf(tinyGpt2), "the sync loader finds it in the cache");
    // Again: one API request for the branch's commit, no file requests.
    const n = hub.requests.length;
    assert.equal(await resolveModel("org/tiny", { ...base(), cacheDir: cache }), folder);
    assert.deepEqual(hub.requests.slice(n).map((r) => r.url), ["/api/models/org/tiny/revision/main"]);
  });

  test("a tag downloads its commit and writes refs/<tag>; a namespace-less id (gpt2) uses models--gpt2", async () => {
    const cache = tmp();
    const { folder, commit } = await downloadSnapshot("org/tiny@v1", { ...base(), cacheDir: cache });
    assert.equal(commit, COMMIT_B);
    assert.equal(fs.readFileSync(path.join(cache, "models--org--tiny", "refs", "v1"), "utf8"), COMMIT_B);
    assert.equal(findCached({ repo: "org/tiny", revision: "v1" }, cache).folder, folder);
    const { model } = await loadPretrainedAsync("gpt2", { ...base(), cacheDir: cache });
    assert.deepEqual(noGrad(() => model.forward(TOKENS)).toArray(), logitsOf(tinyGpt2));
    assert.ok(fs.existsSync(path.join(cache, "models--gpt2", "refs", "main")));
  });

  test("a dropped connection is resumed from the .incomplete file with Range: bytes=N-", async () => {
    const cache = tmp(), half = read("model.safetensors").length >> 1;
    hub.dropOnce.add(modelSha);
    const n = storageGets().length;
    const report = await downloadSnapshot("org/tiny", { ...base(), cacheDir: cache });
    const gets = storageGets().slice(n).filter((r) => r.url === `/lfs/${modelSha}`);
    assert.deepEqual(gets.map((r) => r.range), [undefined, `bytes=${half}-`]);
    const f = report.files.find((x) => x.name === "model.safetensors")!;
    assert.deepEqual([f.resumedFrom, f.breaks], [0, 1], "this call started the file, and resumed it once");
    assert.equal(sha256(fs.readFileSync(path.join(report.folder, "model.safetensors"))), modelSha);
    assert.deepEqual(logitsOf(report.folder), logitsOf(tinyGpt2));
  });

  test("an interrupted download left behind is resumed by the next call", async () => {
    const cache = tmp(), half = read("model.safetensors").length >> 1;
    const incomplete = path.join(cache, "models--org--tiny", "blobs", `${modelSha}.incomplete`);
    hub.dropOnce.add(modelSha);
    await assert.rejects(downloadSnapshot("org/tiny", { ...base(), cacheDir: cache, retries: 0 }), (e: Error) => e instanceof HubError && e.message.includes(incomplete));
    assert.equal(fs.statSync(incomplete).size, half, "the bytes received are kept");
    assert.equal(findCached({ repo: "org/tiny" }, cache).folder, null, "a partial snapshot does not resolve");
    const n = storageGets().length;
    const report = await downloadSnapshot("org/tiny", { ...base(), cacheDir: cache });
    assert.deepEqual(storageGets().slice(n).map((r) => [r.url, r.range]), [[`/lfs/${modelSha}`, `bytes=${half}-`]], "only the rest of model.safetensors is fetched (tokenizer.json was complete)");
    const f = report.files.find((x) => x.name === "model.safetensors")!;
    assert.equal(f.resumedFrom, half);
    assert.ok(!fs.existsSync(incomplete));
    assert.deepEqual(logitsOf(report.folder), logitsOf(tinyGpt2));
    assert.equal(listCachedModels(cache)[0]!.incomplete, 0);
  });

  test("bytes whose sha256 differs from the hub's are rejected and deleted", async () => {
    const cache = tmp();
    hub.corrupt.add(modelSha);
    try {
      await assert.rejects(resolveModel("org/tiny", { ...base(), cacheDir: cache, retries: 0 }), (e: Error) => e instanceof HubError && e.message.includes(`does not match the hub's ${modelSha}`));
    } finally { hub.corrupt.delete(modelSha); }
    const blobs = fs.readdirSync(path.join(cache, "models--org--tiny", "blobs"));
    assert.ok(!blobs.some((b) => b.startsWith(modelSha)), `no blob or partial file for the bad bytes (${blobs.join(", ")})`);
  });

  test("HF_TOKEN goes to the hub as Authorization: Bearer, and not to the storage a redirect points at", async () => {
    hub.requireToken = "hf_loopback";
    try {
      await assert.rejects(resolveModel("org/tiny", { ...base(), cacheDir: tmp() }), /401.*set HF_TOKEN/);
      const n = hub.requests.length;
      await resolveModel("org/tiny", { endpoint: hub.endpoint, env: { HF_TOKEN: "hf_loopback" }, cacheDir: tmp() });
      const seen = hub.requests.slice(n);
      assert.ok(seen.some((r) => r.server === "storage"), "LFS files came from storage");
      for (const r of seen) assert.equal(r.authorization, r.server === "hub" ? "Bearer hf_loopback" : undefined, `${r.method} ${r.url}`);
    } finally { hub.requireToken = undefined; }
  });

  test("HF_ENDPOINT picks the hub; HF_HUB_OFFLINE=1 makes no request and names the cache path when the model is absent", async () => {
    const cache = tmp(), n = hub.requests.length;
    await assert.rejects(resolveModel("org/tiny", { cacheDir: cache, env: { HF_HUB_OFFLINE: "1", HF_ENDPOINT: hub.endpoint } }),
      (e: Error) => e.message.includes("HF_HUB_OFFLINE") && e.message.includes(path.join(cache, "models--org--tiny", "refs", "main")));
    await assert.rejects(downloadSnapshot("org/tiny", { cacheDir: cache, env: { HF_HUB_OFFLINE: "yes", HF_ENDPOINT: hub.endpoint } }), /HF_HUB_OFFLINE is set, so nothing is downloaded/);
    assert.equal(hub.requests.length, n);
    const folder = await resolveModel("org/tiny", { cacheDir: cache, env: { HF_ENDPOINT: hub.endpoint } });
    const m = hub.requests.length;
    assert.equal(await resolveModel("org/tiny", { cacheDir: cache, env: { HF_HUB_OFFLINE: "1", HF_ENDPOINT: hub.endpoint } }), folder);
    assert.equal(hub.requests.length, m, "offline: served from the cache without a request");
  });

  test("an unreachable hub falls back to the cached snapshot (with a note), and without one says so", async () => {
    const cache = tmp();
    const folder = await resolveModel("org/tiny", { ...base(), cacheDir: cache });
    const dead = "http://127.0.0.1:1"; // nothing listens on port 1
    const notes: string[] = [];
    assert.equal(await resolveModel("org/tiny", { endpoint: dead, env: {}, cacheDir: cache, onNote: (s) => notes.push(s) }), folder);
    assert.match(notes.join("\n"), /cannot reach http:\/\/127\.0\.0\.1:1 .*using the cached snapshot/);
    await assert.rejects(resolveModel("org/other", { endpoint: dead, env: {}, cacheDir: cache }), /org\/other: no folder of that name, and as a hub id: .*cannot reach/);
  });

  test("a repo with only pytorch_model.bin is refused by name; a sharded repo fetches its index and shards", async () => {
    await assert.rejects(resolveModel("org/bin-only", { ...base(), cacheDir: tmp() }), /only PyTorch weights \(pytorch_model\.bin\)/);
    const { folder, files } = await downloadSnapshot("org/sharded", { ...base(), cacheDir: tmp() });
    assert.deepEqual(files.map((f) => f.name), ["config.json", "tokenizer.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
    assert.deepEqual(logitsOf(folder), logitsOf(tinyGpt2));
  });
});

function binOnlyRepo(): HubRepo {
  return { id: "org/bin-only", refs: { main: COMMIT_A }, files: new Map([["config.json", read("config.json")], ["pytorch_model.bin", Buffer.from("not read")]]), lfs: new Set(["pytorch_model.bin"]) };
}

/** tiny-gpt2's tensors split over two safetensors shards with an index, as save_pretrained shards. */
function shardedRepo(): HubRepo {
  const files = new Map([["config.json", read("config.json")], ["tokenizer.json", read("tokenizer.json")]]);
  if (!skip) {
    const dir = tmp(), tensors = loadSafetensors(path.join(tinyGpt2, "model.safetensors"));
    const names = [...tensors.keys()], half = Math.ceil(names.length / 2), weight_map: Record<string, string> = {};
    [names.slice(0, half), names.slice(half)].forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      saveSafetensors(path.join(dir, file), new Map(part.map((n) => [n, tensors.get(n)!])));
      files.set(file, fs.readFileSync(path.join(dir, file)));
      for (const n of part) weight_map[n] = file;
    });
    files.set("model.safetensors.index.json", Buffer.from(JSON.stringify({ metadata: {}, weight_map })));
  }
  return { id: "org/sharded", refs: { main: COMMIT_A }, files, lfs: new Set(["tokenizer.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]) };
}

describe("the CLI with a loopback hub", { skip }, () => {
  let hub: LoopbackHub;
  const cache = tmp();
  // The server runs in this process, so the CLI runs asynchronously beside it.
  const cliAsync = async (env: NodeJS.ProcessEnv, ...args: string[]) => {
    try {
      const r = await promisify(execFile)(process.execPath, [path.join(repoRoot, "dist/src/cli/main.js"), ...args], { cwd: repoRoot, env: { ...process.env, HF_HUB_CACHE: cache, ...env }, timeout: 120_000 });
      return { code: 0, ...r };
    } catch (e) { const x = e as { code: number; stdout: string; stderr: string }; return { code: x.code, stdout: x.stdout, stderr: x.stderr }; }
  };
  before(async () => { hub = await new LoopbackHub([tinyRepo("org/tiny")]).start(); });
  after(async () => { await hub.stop(); });

  test("download --json, then models --json, then run on the hub id offline", async () => {
    const d = await cliAsync({ HF_ENDPOINT: hub.endpoint }, "download", "org/tiny", "--json");
    assert.equal(d.code, 0, d.stderr);
    const doc = JSON.parse(d.stdout) as { commit: string; folder: string; files: { name: string; fetched: boolean }[] };
    assert.equal(doc.commit, COMMIT_A);
    assert.deepEqual(doc.files.map((f) => [f.name, f.fetched]), ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "model.safetensors"].map((f) => [f, true]));
    assert.match(d.stderr, /model\.safetensors \(bytes\) \[#+\]/, "a progress bar on stderr");

    const m = await cliAsync({}, "models", "--json");
    assert.equal(m.code, 0, m.stderr);
    const list = JSON.parse(m.stdout) as { cacheDir: string; models: { id: string; bytes: number; revisions: { commit: string; refs: string[]; complete: boolean }[] }[] };
    assert.equal(list.cacheDir, cache);
    assert.deepEqual(list.models.map((x) => [x.id, x.revisions.map((r) => [r.commit, r.refs, r.complete])]), [["org/tiny", [[COMMIT_A, ["main"], true]]]]);
    assert.equal(list.models[0]!.bytes, SNAPSHOT_FILES.reduce((s, f) => s + read(f).length, 0));

    const n = hub.requests.length;
    const r = await cliAsync({ HF_ENDPOINT: hub.endpoint, HF_HUB_OFFLINE: "1" }, "run", "org/tiny", "The Eiffel Tower is in", "--top", "3", "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { top: unknown[] }).top.length, 3);
    assert.equal(hub.requests.length, n, "offline: no request");
  });

  test("a technique command downloads a hub id it is given; offline, a missing one is an error naming the cache path", async () => {
    const other = tmp();
    const r = await cliAsync({ HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: other }, "lens", "org/tiny", "The Eiffel Tower is in", "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { model: string }).model, "org/tiny");
    assert.ok(fs.existsSync(path.join(other, "models--org--tiny", "snapshots", COMMIT_A, "model.safetensors")));
    const off = await cliAsync({ HF_HUB_OFFLINE: "1", HF_HUB_CACHE: tmp() }, "run", "org/absent", "hi", "--json");
    assert.equal(off.code, 1);
    assert.match((JSON.parse(off.stdout) as { error: { message: string } }).error.message, /org\/absent: .*HF_HUB_OFFLINE.*models--org--absent/);
  });
});
