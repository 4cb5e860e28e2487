// A loopback Hugging Face hub for the download tests: two real node:http servers on 127.0.0.1,
// the hub (API and resolve routes, as huggingface_hub calls them) and the LFS storage the hub's
// redirects point at (another origin, like the real CDN). Every request is recorded so tests can
// check headers (Range, Authorization); faults are switched on per file: cut the first transfer
// halfway, or serve corrupted bytes.
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface HubRepo {
  id: string;
  /** Branch or tag → commit; every commit serves the same files here. */
  refs: Record<string, string>;
  files: Map<string, Buffer>;
  /** Files stored with LFS: served through a redirect to storage, etag = sha256. */
  lfs: Set<string>;
}

export interface Recorded { server: "hub" | "storage"; method: string; url: string; range?: string; authorization?: string }

export const sha256 = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
/** A git blob id: the ETag the hub sends for a file not in LFS. */
export const gitSha1 = (b: Buffer) => crypto.createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

export class LoopbackHub {
  readonly requests: Recorded[] = [];
  /** sha256s whose first storage GET is cut after half the bytes. */
  readonly dropOnce = new Set<string>();
  /** sha256s served with one byte flipped. */
  readonly corrupt = new Set<string>();
  /** When set, the hub's routes answer 401 without "Authorization: Bearer <token>". */
  requireToken: string | undefined;
  endpoint = "";
  private storageUrl = "";
  private readonly blobs = new Map<string, Buffer>();
  private readonly servers: http.Server[] = [];

  constructor(readonly repos: HubRepo[]) {
    for (const r of repos) for (const f of r.lfs) this.blobs.set(sha256(r.files.get(f)!), r.files.get(f)!);
  }

  async start(): Promise<this> {
    const listen = async (handler: http.RequestListener): Promise<string> => {
      const s = http.createServer(handler);
      this.servers.push(s);
      await new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok));
      return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    };
    this.endpoint = await listen((q, r) => this.hub(q, r));
    this.storageUrl = await listen((q, r) => this.storage(q, r));
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.servers) { s.closeAllConnections(); await new Promise((ok) => s.close(ok)); }
  }

  private record(server: Recorded["server"], q: http.IncomingMessage): void {
    this.requests.push({ server, method: q.method!, url: q.url!, ...(q.headers.range ? { range: q.headers.range } : {}), ...(q.headers.authorization ? { authorization: q.headers.authorization } : {}) });
  }

  private commitOf(repo: HubRepo, rev: string): string | undefined {
    return repo.refs[rev] ?? (Object.values(repo.refs).includes(rev) ? rev : undefined);
  }

  private hub(q: http.IncomingMessage, res: http.ServerResponse): void {
    this.record("hub", q);
    const url = decodeURIComponent(new URL(q.url!, this.endpoint).pathname);
    if (this.requireToken && q.headers.authorization !== `Bearer ${this.requireToken}`) { res.writeHead(401).end(JSON.stringify({ error: "Invalid credentials" })); return; }
    const api = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(url);
    if (api && q.method === "GET") {
      const repo = this.repos.find((r) => r.id === api[1]), commit = repo && this.commitOf(repo, api[2]!);
      if (!repo || !commit) { res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "Repository not found" })); return; }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: repo.id, sha: commit, siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })) }));
      return;
    }
    const at = url.indexOf("/resolve/");
    const repo = at > 0 ? this.repos.find((r) => r.id === url.slice(1, at)) : undefined;
    if (!repo || (q.method !== "HEAD" && q.method !== "GET")) { res.writeHead(404).end("not found"); return; }
    const [rev, ...fileParts] = url.slice(at + "/resolve/".length).split("/");
    const file = fileParts.join("/"), body = repo.files.get(file), commit = this.commitOf(repo, rev!);
    if (!body || !commit) { res.writeHead(404, { "x-error-code": "EntryNotFound" }).end(); return; }
    if (repo.lfs.has(file)) {
      const sha = sha256(body);
      res.writeHead(302, { location: `${this.storageUrl}/lfs/${sha}`, "x-repo-commit": commit, "x-linked-etag": `"${sha}"`, "x-linked-size": String(body.length), etag: `"${gitSha1(Buffer.from(`oid sha256:${sha}`))}"` }).end();
      return;
    }
    res.writeHead(200, { "x-repo-commit": commit, etag: `"${gitSha1(body)}"`, "content-length": String(body.length) });
    res.end(q.method === "HEAD" ? undefined : body);
  }

  private storage(q: http.IncomingMessage, res: http.ServerResponse): void {
    this.record("storage", q);
    const sha = /^\/lfs\/([0-9a-f]{64})$/.exec(q.url!)?.[1];
    let body = sha ? this.blobs.get(sha) : undefined;
    if (!sha || !body) { res.writeHead(404).end(); return; }
    if (this.corrupt.has(sha)) { body = Buffer.from(body); body[body.length >> 1]! ^= 0xff; }
    const m = /^bytes=(\d+)-$/.exec(q.headers.range ?? "");
    const start = m ? Number(m[1]) : 0;
    if (start >= body.length && m) { res.writeHead(416, { "content-range": `bytes */${body.length}` }).end(); return; }
    const part = body.subarray(start);
    res.writeHead(m ? 206 : 200, { "content-length": String(part.length), "accept-ranges": "bytes", ...(m ? { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
    if (q.method === "HEAD") { res.end(); return; }
    if (this.dropOnce.delete(sha)) {
      // The connection dies after half the file, once the bytes have left this process.
      res.write(part.subarray(0, part.length >> 1), () => res.socket!.destroy());
      return;
    }
    res.end(part);
  }
}
