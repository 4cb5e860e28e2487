// Downloading a model snapshot from the Hugging Face hub into the cache (hub-cache.ts), on node's
// fetch, with the routes and headers huggingface_hub uses:
//   GET  {endpoint}/api/models/{repo}/revision/{rev}  → the commit (sha) and the file list (siblings)
//   HEAD {endpoint}/{repo}/resolve/{commit}/{file}    → X-Repo-Commit, X-Linked-Etag or ETag, X-Linked-Size
//        or Content-Length; LFS files answer with a redirect to their storage (Location)
//   GET  that URL, with Range: bytes=N- to resume a blobs/{etag}.incomplete file
// LFS files are checked against their sha256 (the etag) before they become blobs. Nothing here prints:
// progress goes to a callback.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  COMMIT, findCached, hfHome, hubCacheDir, hubIdText, HubError, isLocalPath, isOffline, notCachedError, parseHubId, repoFolder, shardsOf, type HubId,
} from "./hub-cache.js";

export interface DownloadProgress { file: string; done: number; total: number }

export interface HubOptions {
  /** Branch, tag or commit (default "main", or the "@rev" of the id). */
  revision?: string;
  /** Default hubCacheDir(env). */
  cacheDir?: string;
  /** Default HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default HF_TOKEN, else the token file huggingface-cli login writes ($HF_HOME/token). */
  token?: string;
  /** Default HF_HUB_OFFLINE: resolve from the cache only. */
  offline?: boolean;
  /** Environment read for the defaults above (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** How many times a dropped transfer is resumed within one call (default 3). */
  retries?: number;
  /** Bytes received per file (called as they arrive). */
  onProgress?: (p: DownloadProgress) => void;
  /** Notes worth showing (e.g. "the hub is unreachable; using the cached snapshot"). */
  onNote?: (message: string) => void;
}

export interface DownloadedFile {
  name: string;
  bytes: number;
  /** The blob's name: the sha256 of an LFS file, else the hub's ETag. */
  etag: string;
  /** False when the blob was already in the cache. */
  fetched: boolean;
  /** Bytes of an .incomplete file the transfer resumed from (0 when it started afresh). */
  resumedFrom: number;
  /** Transfers that broke off within this call and were resumed. */
  breaks: number;
}

export interface SnapshotReport { repo: string; revision: string; commit: string; folder: string; files: DownloadedFile[] }

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

function endpointOf(opts: HubOptions): string {
  return (opts.endpoint ?? (opts.env ?? process.env).HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
}

function tokenOf(opts: HubOptions): string | undefined {
  const env = opts.env ?? process.env;
  if (opts.token !== undefined) return opts.token || undefined;
  if (env.HF_TOKEN) return env.HF_TOKEN;
  const file = env.HF_TOKEN_PATH || path.join(hfHome(env), "token");
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() || undefined : undefined;
}

/** A hub client for one call: endpoint, token and the headers every request carries. */
class Hub {
  readonly endpoint: string;
  private readonly token: string | undefined;
  constructor(opts: HubOptions) { this.endpoint = endpointOf(opts); this.token = tokenOf(opts); }

  /** The token goes only to the endpoint's own origin, never to the storage a redirect points at. */
  headers(url: string, extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { "user-agent": `circuitscope; node/${process.versions.node}`, ...extra };
    if (this.token && new URL(url).origin === new URL(this.endpoint).origin) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  async request(url: string, init: RequestInit & { headers?: Record<string, string> }, what: string): Promise<Response> {
    try {
      return await fetch(url, { ...init, headers: this.headers(url, init.headers) });
    } catch (e) {
      throw new HubUnreachable(`${what}: cannot reach ${new URL(url).origin} (${causeOf(e)})`);
    }
  }

  async fail(res: Response, what: string): Promise<never> {
    const body = (await res.text().catch(() => "")).slice(0, 200);
    const hint = res.status === 401 || res.status === 403
      ? (this.token ? " (the token in HF_TOKEN has no access to this repo)" : " (private or gated repo: set HF_TOKEN)")
      : res.status === 404 ? " (no such repo, revision or file)" : "";
    throw new HubError(`${what}: ${res.status} ${res.statusText}${hint}${body ? `: ${body}` : ""}`, res.status);
  }
}

/** The hub could not be reached at all (as opposed to answering with an error). */
export class HubUnreachable extends HubError {
  override name = "HubUnreachable";
}

function causeOf(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return err.cause?.code ?? err.cause?.message ?? err.message;
}

const etagOf = (raw: string | null): string | null => raw === null ? null : raw.replace(/^W\//, "").replace(/^"|"$/g, "");

interface RepoInfo { commit: string; files: string[] }

async function repoInfo(hub: Hub, repo: string, revision: string): Promise<RepoInfo> {
  const url = `${hub.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  const what = `${repo}@${revision}`;
  const res = await hub.request(url, {}, what);
  if (!res.ok) await hub.fail(res, `${what} (GET ${url})`);
  const json = await res.json() as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
  if (typeof json.sha !== "string" || !COMMIT.test(json.sha)) throw new HubError(`${url}: no commit hash ("sha") in the answer`);
  if (!Array.isArray(json.siblings)) throw new HubError(`${url}: no file list ("siblings") in the answer`);
  return { commit: json.sha, files: json.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === "string") };
}

interface FileMeta { etag: string; size: number; url: string; commit: string | null }

/** HEAD on the resolve route; relative redirects (a renamed repo) are followed, an absolute one is where the bytes are. */
async function fileMeta(hub: Hub, repo: string, commit: string, file: string): Promise<FileMeta> {
  let url = `${hub.endpoint}/${repo}/resolve/${commit}/${file.split("/").map(encodeURIComponent).join("/")}`;
  for (let hop = 0; hop < 5; hop++) {
    const res = await hub.request(url, { method: "HEAD", redirect: "manual", headers: { "accept-encoding": "identity" } }, `${repo}/${file}`);
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location && location.startsWith("/")) { url = new URL(location, url).href; continue; }
    if (!(res.ok || (res.status >= 300 && res.status < 400))) await hub.fail(res, `${repo}/${file} (HEAD ${url})`);
    const etag = etagOf(res.headers.get("x-linked-etag") ?? res.headers.get("etag"));
    const size = Number(res.headers.get("x-linked-size") ?? res.headers.get("content-length"));
    if (!etag || etag.includes("/") || etag.includes("..")) throw new HubError(`${repo}/${file}: the hub sent no usable ETag (HEAD ${url})`);
    if (!Number.isSafeInteger(size) || size < 0) throw new HubError(`${repo}/${file}: the hub sent no file size (HEAD ${url})`);
    return { etag, size, url: location ? new URL(location, url).href : url, commit: res.headers.get("x-repo-commit") };
  }
  throw new HubError(`${repo}/${file}: more than 5 redirects from ${hub.endpoint}`);
}

const sizeOf = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);

async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash("sha256");
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/**
 * One transfer into blobs/{etag}.incomplete, appending from its current size with a Range request;
 * resolves true when the file is complete, false when the connection dropped (what it got is kept).
 */
async function transfer(hub: Hub, meta: FileMeta, incomplete: string, file: string, onProgress?: HubOptions["onProgress"]): Promise<boolean> {
  let start = sizeOf(incomplete);
  if (start > meta.size) { fs.rmSync(incomplete); start = 0; } // not a prefix of this file
  if (start === meta.size) return true;
  let res: Response;
  try {
    res = await hub.request(meta.url, { headers: { "accept-encoding": "identity", ...(start > 0 ? { range: `bytes=${start}-` } : {}) } }, file);
  } catch (e) {
    if (e instanceof HubUnreachable) return false; // counted as a broken transfer, retried
    throw e;
  }
  if (res.status === 416) { fs.rmSync(incomplete, { force: true }); return false; }
  if (!res.ok) await hub.fail(res, `${file} (GET ${meta.url})`);
  if (start > 0 && res.status !== 206) start = 0; // the server ignored the Range: start again
  const fd = fs.openSync(incomplete, start > 0 ? "a" : "w");
  let done = start;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      fs.writeSync(fd, chunk);
      done += chunk.length;
      onProgress?.({ file, done, total: meta.size });
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).syscall) throw e; // the disk failed (ENOSPC, EIO), not the connection
    return false;
  } finally {
    fs.closeSync(fd);
  }
  return done === meta.size;
}

/** blobs/{etag}: downloaded (resuming a partial file), size- and sha256-checked, then renamed into place. */
async function fetchBlob(hub: Hub, meta: FileMeta, blob: string, file: string, opts: HubOptions): Promise<{ resumedFrom: number; breaks: number }> {
  const incomplete = `${blob}.incomplete`;
  const resumedFrom = sizeOf(incomplete) <= meta.size ? sizeOf(incomplete) : 0;
  const retries = opts.retries ?? 3;
  let attempt = 0;
  for (; ; attempt++) {
    if (await transfer(hub, meta, incomplete, file, opts.onProgress)) break;
    if (attempt >= retries) throw new HubError(`${file}: the transfer from ${meta.url} broke off ${attempt + 1} times; ${sizeOf(incomplete)} of ${meta.size} bytes are kept in ${incomplete}, and the next download resumes there`);
    await new Promise((ok) => setTimeout(ok, 250 * attempt)); // a moment before the retry, longer each time
  }
  const got = sizeOf(incomplete);
  if (got !== meta.size) throw new HubError(`${file}: got ${got} bytes, the hub said ${meta.size} (${incomplete})`);
  if (/^[0-9a-f]{64}$/.test(meta.etag)) { // an LFS file: its etag is the sha256 of its contents
    const sha = await sha256File(incomplete);
    if (sha !== meta.etag) {
      fs.rmSync(incomplete);
      throw new HubError(`${file}: sha256 ${sha} does not match the hub's ${meta.etag}; the partial file was deleted, download again`);
    }
  }
  fs.renameSync(incomplete, blob);
  return { resumedFrom, breaks: attempt };
}

/** snapshots/{commit}/{file} → ../../blobs/{etag}, relative as huggingface_hub makes it (a copy where links are refused). */
function linkIntoSnapshot(blob: string, pointer: string): void {
  fs.mkdirSync(path.dirname(pointer), { recursive: true });
  fs.rmSync(pointer, { force: true });
  try { fs.symlinkSync(path.relative(path.dirname(pointer), blob), pointer); } catch { fs.copyFileSync(blob, pointer); }
}

/** The files circuitscope loads, from a revision's file list; shards are added once the index is in. */
function wantedFiles(id: HubId, files: string[]): string[] {
  const has = new Set(files);
  const where = `${hubIdText(id)} on the hub`;
  if (!has.has("config.json")) throw new HubError(`${where} has no config.json (files: ${files.join(", ") || "none"})`);
  const weights = has.has("model.safetensors") ? "model.safetensors" : has.has("model.safetensors.index.json") ? "model.safetensors.index.json" : null;
  if (weights === null) {
    const bin = files.filter((f) => /^pytorch_model.*\.bin(\.index\.json)?$/.test(f));
    throw new HubError(bin.length
      ? `${where} has only PyTorch weights (${bin.join(", ")}), which circuitscope does not read (pickled torch); use a revision or a copy of the repo with model.safetensors`
      : `${where} has no model.safetensors or model.safetensors.index.json (files: ${files.join(", ")})`);
  }
  return ["config.json", ...TOKENIZER_FILES.filter((f) => has.has(f)), weights];
}

/**
 * Download what circuitscope needs of a model repo at a revision (config.json, the tokenizer files it
 * has, model.safetensors or the index and its shards) into the cache, skipping blobs already there and
 * resuming partial ones. Writes refs/{revision} when the revision is a branch or tag.
 */
export async function downloadSnapshot(idOrText: HubId | string, opts: HubOptions = {}): Promise<SnapshotReport> {
  const id = typeof idOrText === "string" ? parseHubId(idOrText, opts.revision) : idOrText;
  if (id === null) throw new HubError(`${idOrText}: not a hub model id (expected org/name or org/name@revision)`);
  const revision = id.revision ?? opts.revision ?? "main";
  const dir = repoFolder(opts.cacheDir ?? hubCacheDir(opts.env), id.repo);
  if (opts.offline ?? isOffline(opts.env)) throw new HubError(`${hubIdText(id)}: HF_HUB_OFFLINE is set, so nothing is downloaded (the cache folder is ${dir})`);
  const hub = new Hub(opts);
  const info = await repoInfo(hub, id.repo, revision);
  const folder = path.join(dir, "snapshots", info.commit);
  const report: DownloadedFile[] = [];
  const queue = wantedFiles(id, info.files);
  for (let i = 0; i < queue.length; i++) {
    const file = queue[i]!;
    const pointer = path.join(folder, file);
    if (fs.existsSync(pointer)) { // already in this snapshot (huggingface_hub trusts it too): no request
      report.push({ name: file, bytes: fs.statSync(pointer).size, etag: path.basename(fs.realpathSync(pointer)), fetched: false, resumedFrom: 0, breaks: 0 });
      if (file === "model.safetensors.index.json") queue.push(...shardsOf(pointer).filter((s) => !queue.includes(s)));
      continue;
    }
    const meta = await fileMeta(hub, id.repo, info.commit, file);
    if (meta.commit !== null && meta.commit !== info.commit) throw new HubError(`${id.repo}/${file}: the hub answered for commit ${meta.commit}, not ${info.commit}`);
    const blob = path.join(dir, "blobs", meta.etag);
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    const cached = fs.existsSync(blob) && fs.statSync(blob).size === meta.size;
    const { resumedFrom, breaks } = cached ? { resumedFrom: 0, breaks: 0 } : await fetchBlob(hub, meta, blob, file, opts);
    if (!fs.existsSync(pointer) || fs.realpathSync(pointer) !== fs.realpathSync(blob)) linkIntoSnapshot(blob, pointer);
    report.push({ name: file, bytes: meta.size, etag: meta.etag, fetched: !cached, resumedFrom, breaks });
    if (file === "model.safetensors.index.json") queue.push(...shardsOf(pointer).filter((s) => !queue.includes(s)));
  }
  if (revision !== info.commit) {
    const ref = path.join(dir, "refs", revision);
    fs.mkdirSync(path.dirname(ref), { recursive: true });
    fs.writeFileSync(ref, info.commit);
  }
  return { repo: id.repo, revision, commit: info.commit, folder, files: report };
}

/**
 * A model argument as a folder to load: an existing path as is; a hub id from the cache when its
 * snapshot is complete there (asking the hub first which commit a branch points to, unless offline
 * or the revision is a commit hash), else downloaded. Offline, or with the hub unreachable, a model
 * not in the cache is an error naming the cache path looked at.
 */
export async function resolveModel(idOrPath: string, opts: HubOptions = {}): Promise<string> {
  if (opts.revision === undefined && isLocalPath(idOrPath)) return idOrPath;
  const id = parseHubId(idOrPath, opts.revision);
  if (id === null) throw new HubError(`${idOrPath}: a revision was given, but this is not a hub id (org/name)`);
  const cacheDir = opts.cacheDir ?? hubCacheDir(opts.env);
  const cached = findCached(id, cacheDir);
  if (opts.offline ?? isOffline(opts.env)) {
    if (cached.folder === null) throw notCachedError(id, cached, "HF_HUB_OFFLINE is set and it is not in the cache");
    return cached.folder;
  }
  if (cached.folder !== null && COMMIT.test(id.revision ?? "")) return cached.folder; // a commit never changes
  try {
    return (await downloadSnapshot(id, { ...opts, cacheDir })).folder;
  } catch (e) {
    if (e instanceof HubUnreachable && cached.folder !== null) {
      opts.onNote?.(`${e.message}; using the cached snapshot ${cached.folder}`);
      return cached.folder;
    }
    // A mistyped folder reads like a hub id: say both.
    if (e instanceof HubUnreachable || (e instanceof HubError && e.status === 404)) throw new HubError(`${idOrPath}: no folder of that name, and as a hub id: ${e.message}`, (e as HubError).status);
    throw e;
  }
}
