// The Hugging Face hub cache, laid out as huggingface_hub lays it out, so a cache filled by
// transformers is read here and one filled here is read by transformers:
//   $HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
//     models--{org}--{name}/blobs/{etag}              file contents (sha256 for LFS files, git sha1 otherwise)
//     models--{org}--{name}/blobs/{etag}.incomplete   a partial download, resumed with a Range request
//     models--{org}--{name}/snapshots/{commit}/{file}  relative symlinks to ../../blobs/{etag}
//     models--{org}--{name}/refs/{branch}               the commit a branch or tag pointed to when fetched
//     models--{org}--{name}/.no_exist/{commit}/{file}   empty markers: the file is absent at that commit
// Everything here is synchronous and offline: finding a snapshot, checking it is complete, listing.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export class HubError extends Error {
  override name = "HubError";
  /** The HTTP status when the hub answered with an error. */
  constructor(message: string, readonly status?: number) { super(message); }
}

/** A hub model id with an optional revision: "gpt2", "EleutherAI/pythia-70m", "EleutherAI/pythia-70m@step1000". */
export interface HubId {
  repo: string;
  /** Branch, tag or commit; undefined means "main". */
  revision?: string;
}

export const COMMIT = /^[0-9a-f]{40}$/;
// huggingface_hub's validate_repo_id: an optional namespace and a name of word characters, "-" and ".",
// each starting and ending with a word character.
const REPO = /^(?:[\w.-]+\/)?[\w.-]{1,96}$/;

/** "org/name" or "org/name@rev" as a HubId, or null when the text cannot be a hub id (e.g. "../models/x", "a/b/c"). */
export function parseHubId(text: string, revision?: string): HubId | null {
  const at = text.indexOf("@");
  const repo = at >= 0 ? text.slice(0, at) : text;
  const rev = at >= 0 ? text.slice(at + 1) : revision;
  if (!REPO.test(repo) || repo.includes("--") || repo.includes("..") || repo.endsWith(".git") || repo.split("/").some((p) => /^[.-]|[.-]$/.test(p))) return null;
  if (at >= 0 && revision !== undefined && revision !== rev) throw new HubError(`${text}: revision given twice ("${rev}" in the id and "${revision}" as an option)`);
  if (rev !== undefined && (rev === "" || rev.split("/").some((p) => p === "" || p === "." || p === ".."))) throw new HubError(`${text}: bad revision ${JSON.stringify(rev)}`);
  return rev === undefined ? { repo } : { repo, revision: rev };
}

/** True when the text may name a local folder: it exists, or it is written as a path (./x, /x, x/y/z). */
export function isLocalPath(text: string): boolean {
  return fs.existsSync(text) || parseHubId(text) === null;
}

/** The hub cache folder: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (as huggingface_hub). */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE; // the older name, still read by huggingface_hub
  return path.join(hfHome(env), "hub");
}

export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "huggingface");
}

/** HF_HUB_OFFLINE as huggingface_hub reads it: 1, ON, YES or TRUE (any case). */
export function isOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return ["1", "ON", "YES", "TRUE"].includes((env.HF_HUB_OFFLINE ?? "").toUpperCase());
}

/** models--org--name (a repo folder's name in the cache). */
export function repoFolderName(repo: string): string {
  return ["models", ...repo.split("/")].join("--");
}

export function repoFolder(cacheDir: string, repo: string): string {
  return path.join(cacheDir, repoFolderName(repo));
}

/** The commit a revision names in the cache: itself if it is a commit hash, else refs/{revision}; null if unknown. */
export function cachedCommit(repoDir: string, revision: string): string | null {
  const ref = path.join(repoDir, "refs", revision);
  if (fs.existsSync(ref) && fs.statSync(ref).isFile()) return fs.readFileSync(ref, "utf8").trim();
  if (COMMIT.test(revision)) return revision;
  return null;
}

/** Weights a snapshot folder lacks: [] when model.safetensors is there, or the index and every shard it lists. */
export function missingWeights(folder: string): string[] {
  if (fs.existsSync(path.join(folder, "model.safetensors"))) return [];
  const index = path.join(folder, "model.safetensors.index.json");
  if (!fs.existsSync(index)) return ["model.safetensors"];
  return shardsOf(index).filter((s) => !fs.existsSync(path.join(folder, s)));
}

/** The shard files a model.safetensors.index.json names, each once. */
export function shardsOf(indexFile: string): string[] {
  let json: { weight_map?: Record<string, string> };
  try { json = JSON.parse(fs.readFileSync(indexFile, "utf8")); } catch (e) {
    throw new HubError(`${indexFile}: not valid JSON (${(e as Error).message})`);
  }
  if (!json.weight_map || typeof json.weight_map !== "object") throw new HubError(`${indexFile}: no weight_map`);
  const shards = [...new Set(Object.values(json.weight_map))];
  for (const s of shards) if (typeof s !== "string" || s.includes("..") || path.isAbsolute(s)) throw new HubError(`${indexFile}: bad shard name ${JSON.stringify(s)}`);
  return shards;
}

export interface CacheLookup {
  /** The snapshot folder, when it has config.json and all its weights. */
  folder: string | null;
  commit: string | null;
  /** What was looked at, for the error when folder is null. */
  looked: string;
}

/** Where the cache holds a complete snapshot of repo at revision (default "main"), without any network. */
export function findCached(id: HubId, cacheDir = hubCacheDir()): CacheLookup {
  const revision = id.revision ?? "main";
  const dir = repoFolder(cacheDir, id.repo);
  const commit = cachedCommit(dir, revision);
  if (commit === null) return { folder: null, commit: null, looked: path.join(dir, "refs", revision) };
  const folder = path.join(dir, "snapshots", commit);
  if (!fs.existsSync(path.join(folder, "config.json"))) return { folder: null, commit, looked: path.join(folder, "config.json") };
  const missing = missingWeights(folder);
  if (missing.length) return { folder: null, commit, looked: path.join(folder, missing[0]!) };
  return { folder, commit, looked: folder };
}

/** The text of an id as the user would type it again: "org/name" or "org/name@rev". */
export function hubIdText(id: HubId): string {
  return id.revision === undefined ? id.repo : `${id.repo}@${id.revision}`;
}

/** The error for a hub id not in the cache, naming the path looked at and how to fill it. */
export function notCachedError(id: HubId, lookup: CacheLookup, why = "not in the cache"): HubError {
  const text = hubIdText(id);
  return new HubError(`${text}: no folder of that name, and ${why} (looked for ${lookup.looked}); run \`npx circuitscope download ${text}\` or use loadPretrainedAsync`);
}

/**
 * A model argument as a folder to load, from disk or the cache only: an existing path is returned
 * as is, a hub id becomes its cached snapshot folder, anything else is returned unchanged so the
 * folder loader names the problem.
 */
export function localModelFolder(idOrPath: string, revision?: string, cacheDir = hubCacheDir()): string {
  if (revision === undefined && isLocalPath(idOrPath)) return idOrPath;
  const id = parseHubId(idOrPath, revision);
  if (id === null) throw new HubError(`${idOrPath}: a revision was given, but this is not a hub id (org/name)`);
  const lookup = findCached(id, cacheDir);
  if (lookup.folder === null) throw notCachedError(id, lookup);
  return lookup.folder;
}

export interface CachedFile { name: string; bytes: number }
export interface CachedRevision { commit: string; refs: string[]; files: CachedFile[]; complete: boolean }
export interface CachedModel { id: string; folder: string; bytes: number; revisions: CachedRevision[]; incomplete: number }

function filesUnder(root: string, rel = ""): CachedFile[] {
  const out: CachedFile[] = [];
  for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const name = rel ? `${rel}/${e.name}` : e.name, full = path.join(root, name);
    if (e.isDirectory()) out.push(...filesUnder(root, name));
    else if (fs.existsSync(full)) out.push({ name, bytes: fs.statSync(full).size }); // a dangling link is skipped
  }
  return out;
}

function refsUnder(dir: string, rel = ""): [string, string][] {
  if (!fs.existsSync(path.join(dir, rel))) return [];
  const out: [string, string][] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const name = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...refsUnder(dir, name));
    else out.push([name, fs.readFileSync(path.join(dir, name), "utf8").trim()]);
  }
  return out;
}

/** Every model repo in the cache with its snapshots, the refs pointing at each, and its size on disk (blobs). */
export function listCachedModels(cacheDir = hubCacheDir()): CachedModel[] {
  if (!fs.existsSync(cacheDir)) return [];
  const models: CachedModel[] = [];
  for (const e of fs.readdirSync(cacheDir, { withFileTypes: true })) {
    if (!e.isDirectory() || !e.name.startsWith("models--")) continue;
    const folder = path.join(cacheDir, e.name);
    const blobs = path.join(folder, "blobs");
    let bytes = 0, incomplete = 0;
    if (fs.existsSync(blobs)) for (const b of fs.readdirSync(blobs)) {
      bytes += fs.statSync(path.join(blobs, b)).size;
      if (b.endsWith(".incomplete")) incomplete++;
    }
    const refs = refsUnder(path.join(folder, "refs"));
    const snaps = path.join(folder, "snapshots");
    const revisions = fs.existsSync(snaps) ? fs.readdirSync(snaps).sort().map((commit): CachedRevision => {
      const dir = path.join(snaps, commit);
      return {
        commit, refs: refs.filter(([, c]) => c === commit).map(([r]) => r).sort(), files: filesUnder(dir).sort((a, b) => a.name.localeCompare(b.name)),
        complete: fs.existsSync(path.join(dir, "config.json")) && missingWeights(dir).length === 0,
      };
    }) : [];
    models.push({ id: e.name.slice("models--".length).split("--").join("/"), folder, bytes, revisions, incomplete });
  }
  return models.sort((a, b) => a.id.localeCompare(b.id));
}
