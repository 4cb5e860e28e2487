// The workbench's HTTP server (node:http, no framework): serves the page, its bundled script and
// the JSON API of api-types.ts over one Workbench. Every answer to /api/* is JSON; failures are
// { error } with a status (400 bad input or bad JSON, 404 unknown route, 405 wrong method, 413 body
// too large, 500 a bug), and no request can take the process down. Analyses run synchronously, one
// request at a time, as the engine does.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { ApiError, type Workbench } from "./workbench.js";
import { TECHNIQUES } from "../techniques/index.js";
import { listTechniques, runForRequest, streamTechnique } from "./technique-routes.js";
import { pageHtml } from "../web/page.js";

const MAX_BODY = 1 << 20; // 1 MiB: prompts, not corpora

type Route = (body: Record<string, unknown>) => unknown;
interface Entry { route: Route; get: boolean; post?: boolean }

export interface ServerOptions {
  /** The page's script (the esbuild bundle of src/web/main.ts). */
  script: string;
  /** Called once per request with a one-line summary (method, path, status, ms). */
  log?: (line: string) => void;
}

function send(res: ServerResponse, status: number, body: string, type: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), "cache-control": "no-store", "x-content-type-options": "nosniff", ...extra });
  res.end(body);
}

const sendJson = (res: ServerResponse, status: number, doc: unknown, extra: Record<string, string> = {}) =>
  send(res, status, JSON.stringify(doc), "application/json; charset=utf-8", extra);

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // An oversized body is read to its end (and dropped), so the client gets the 413 rather than a reset.
    req.on("data", (c: Buffer) => { size += c.length; if (size <= MAX_BODY) chunks.push(c); });
    req.on("end", () => (size > MAX_BODY ? reject(new ApiError(413, `request body of ${size} bytes; the limit is ${MAX_BODY}`)) : resolve(Buffer.concat(chunks).toString("utf8"))));
    req.on("error", reject);
  });
}

/** A POST body as a JSON object; 400 when it is not one. */
function parseBody(text: string): Record<string, unknown> {
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) { throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`); }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new ApiError(400, "the request body must be a JSON object");
  return v as Record<string, unknown>;
}

/** GET query parameters as a body: integer-looking values of numeric fields become numbers. */
function queryBody(params: URLSearchParams): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [k, v] of params) body[k] = k === "top" && /^-?\d+$/.test(v) ? Number(v) : v;
  return body;
}

export function createWorkbenchServer(wb: Workbench, opts: ServerOptions): Server {
  const page = pageHtml(wb.name);
  const subject = wb.subject();
  const listing = listTechniques(TECHNIQUES);
  const api: Record<string, Entry> = {
    "/api/info": { route: () => wb.info(), get: true, post: false },
    "/api/techniques": { route: () => listing, get: true, post: false },
    "/api/run": { route: (b) => wb.run(b), get: true },
  };
  // One POST route per technique descriptor, validated by its own schema.
  const techniqueAt = new Map(TECHNIQUES.map((t) => [`/api/${t.name}`, t]));
  for (const path of techniqueAt.keys()) if (api[path]) throw new Error(`${path}: a technique and a hand-written route share the path`);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<number> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    if (url.pathname === "/" || url.pathname === "/index.html" || url.pathname === "/app.js") {
      if (method !== "GET" && method !== "HEAD") { sendJson(res, 405, { error: `${method} ${url.pathname}: use GET` }, { allow: "GET, HEAD" }); return 405; }
      if (url.pathname === "/app.js") send(res, 200, opts.script, "text/javascript; charset=utf-8");
      else send(res, 200, page, "text/html; charset=utf-8");
      return 200;
    }
    const technique = techniqueAt.get(url.pathname);
    if (technique) {
      if (method !== "POST") { sendJson(res, 405, { error: `${method} ${url.pathname}: use POST` }, { allow: "POST" }); return 405; }
      const body = parseBody(await readBody(req));
      const render = url.searchParams.get("render") === "1";
      if ((req.headers.accept ?? "").includes("text/event-stream")) return streamTechnique(req, res, technique, subject, body, render);
      const out = await runForRequest(technique, subject, body, { render });
      sendJson(res, 200, render ? out : out.result);
      return 200;
    }
    const entry = api[url.pathname];
    if (!entry) { sendJson(res, 404, { error: `no route ${method} ${url.pathname}; the API has ${[...Object.keys(api), ...techniqueAt.keys()].join(", ")}` }); return 404; }
    const allowed = entry.post === false ? ["GET"] : entry.get ? ["GET", "POST"] : ["POST"];
    if (!allowed.includes(method)) { sendJson(res, 405, { error: `${method} ${url.pathname}: use ${allowed.join(" or ")}` }, { allow: allowed.join(", ") }); return 405; }
    const body = method === "POST" ? parseBody(await readBody(req)) : queryBody(url.searchParams);
    sendJson(res, 200, entry.route(body));
    return 200;
  }

  return createServer((req, res) => {
    const t0 = Date.now();
    handle(req, res).then((status) => status, (e: unknown) => {
      const err = e as Error;
      const status = e instanceof ApiError ? e.status : 500;
      // 500s are bugs: say so, with the message, and keep serving.
      const message = status === 500 ? `internal error: ${err?.message ?? String(e)}` : err.message;
      if (!res.headersSent) sendJson(res, status, { error: message }); else res.destroy();
      if (status === 500) opts.log?.(`error on ${req.method} ${req.url}: ${err?.stack ?? String(e)}`);
      return status;
    }).then((status) => opts.log?.(`${req.method} ${(req.url ?? "/").split("?")[0]} ${status} ${Date.now() - t0} ms`));
  }).on("clientError", (_e, socket) => { if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"); });
}
