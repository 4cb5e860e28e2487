// The API routes generated from the technique descriptors: GET /api/techniques lists every one with
// its input's JSON Schema; POST /api/<name> validates the body with the technique's own schema (400
// naming the field), runs it on the loaded model and answers its result. With `?render=1` the answer
// also carries the CLI's text and the pictures (what the page's generic view shows). A request that
// accepts text/event-stream gets progress events, then the result; closing it cancels the run.
import type { IncomingMessage, ServerResponse } from "node:http";
import { inputJsonSchema, InputError, runWithInput, type Subject, type Technique } from "../techniques/technique.js";
import { ApiError } from "./workbench.js";

/** GET /api/techniques: what the page builds its forms from. */
export interface TechniqueListing {
  name: string;
  summary: string;
  long: boolean;
  positionals: readonly string[];
  hasPictures: boolean;
  /** The input's JSON Schema (fields with defaults are optional). */
  input: unknown;
}

export interface RenderedResult<R = unknown> {
  result: R;
  text?: string;
  pictures?: { name: string; content: string }[];
}

export function listTechniques(techniques: readonly Technique[]): TechniqueListing[] {
  return techniques.map((t) => ({ name: t.name, summary: t.summary, long: t.long ?? false, positionals: t.positionals ?? [], hasPictures: t.pictures !== undefined, input: inputJsonSchema(t) }));
}

/** Run one technique for a request body; input errors become 400s naming the field. */
export async function runForRequest(t: Technique, subject: Subject, body: unknown, opts: { render: boolean; signal?: AbortSignal; onProgress?: (p: { done: number; total: number; stage?: string }) => void }): Promise<RenderedResult> {
  try {
    const { result, input } = await runWithInput(t, subject, body, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
    if (!opts.render) return { result };
    return { result, text: t.text(result, input), ...(t.pictures ? { pictures: t.pictures(result, input) } : {}) };
  } catch (e) {
    if (e instanceof InputError) throw new ApiError(400, `"${e.field}": ${e.message}`);
    throw e;
  }
}

/**
 * Answer a technique request as server-sent events: `progress` events while it runs, then one
 * `result` (the RenderedResult) or `error` ({ error, status }). The client closing the stream aborts the run.
 */
export async function streamTechnique(req: IncomingMessage, res: ServerResponse, t: Technique, subject: Subject, body: unknown, render: boolean): Promise<number> {
  const ac = new AbortController();
  req.on("close", () => { if (!res.writableEnded) ac.abort(new Error("the client closed the request")); });
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" });
  const event = (name: string, data: unknown) => res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  try {
    const out = await runForRequest(t, subject, body, { render, signal: ac.signal, onProgress: (p) => event("progress", p) });
    event("result", out);
    res.end();
    return 200;
  } catch (e) {
    const status = e instanceof ApiError ? e.status : ac.signal.aborted ? 499 : 500;
    if (!res.writableEnded && !res.destroyed) { event("error", { error: (e as Error).message, status }); res.end(); }
    return status;
  }
}
