// The page's generic technique view: every descriptor the server lists (GET /api/techniques) gets a
// form built from its input's JSON Schema; Run posts it to /api/<name>?render=1 and shows the
// technique's pictures and text — the same renderers the CLI writes with --out. Long techniques
// stream their progress (server-sent events) and can be cancelled, which stops the run on the server.
import type { RenderedResult, TechniqueListing } from "../server/api-types.js";

interface FieldSchema { type?: string; enum?: string[]; default?: unknown; description?: string; minimum?: number; maximum?: number; anyOf?: FieldSchema[] }
interface ObjectSchema { properties?: Record<string, FieldSchema>; required?: string[] }

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, unknown> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

/** One input element per schema field, and how to read its value back (undefined = leave the field out). */
function fieldInput(id: string, name: string, f: FieldSchema, required: boolean, prompt: () => string): { node: HTMLElement; read(): unknown } {
  const label = el("label", { htmlFor: id, textContent: name, title: f.description ?? "" });
  const wrap = (input: HTMLElement) => el("div", { className: "row" }, label, input, el("span", { className: "hint", textContent: f.description ?? "" }));
  if (f.enum) {
    const sel = el("select", { id }, ...f.enum.map((v) => el("option", { value: v, textContent: v })));
    if (typeof f.default === "string") sel.value = f.default;
    return { node: wrap(sel), read: () => sel.value };
  }
  if (f.type === "boolean") {
    const box = el("input", { id, type: "checkbox", checked: f.default === true });
    return { node: wrap(box), read: () => box.checked };
  }
  if (f.type === "number" || f.type === "integer") {
    const num = el("input", { id, type: "number", step: f.type === "integer" ? "1" : "any", value: f.default === undefined ? "" : String(f.default) });
    return { node: wrap(num), read: () => (num.value === "" ? undefined : Number(num.value)) };
  }
  // Text or token ids (a prompt, a token): a text box where "[1, 403, 407]" (or "[1234]") means ids.
  if (f.anyOf?.some((o) => o.type === "string")) {
    const many = f.anyOf.some((o) => o.type === "array");
    const txt = el("input", { id, type: "text", size: 50, spellcheck: false, value: name === "prompt" ? prompt() : "" });
    return {
      node: wrap(txt),
      read: () => {
        const v = txt.value;
        if (v === "" && !required) return undefined;
        if (/^\s*\[[\d\s,]*\]\s*$/.test(v)) { const ids = JSON.parse(v) as number[]; return many ? ids : ids[0]; }
        return v;
      },
    };
  }
  if (f.type === "string") {
    const txt = el("input", { id, type: "text", size: 50, spellcheck: false, value: typeof f.default === "string" ? f.default : name === "prompt" ? prompt() : "" });
    return { node: wrap(txt), read: () => (txt.value === "" && !required ? undefined : txt.value) };
  }
  // Arrays and objects: JSON in a text area.
  const area = el("textarea", { id, rows: 3, spellcheck: false, placeholder: "JSON", value: f.default === undefined ? "" : JSON.stringify(f.default) });
  return {
    node: wrap(area),
    read: () => {
      if (area.value.trim() === "") return undefined;
      try { return JSON.parse(area.value); } catch (e) { throw new Error(`${name}: not JSON (${(e as Error).message})`); }
    },
  };
}

/** POST and read a server-sent-event stream: progress events update the bar; the result or error ends it. */
async function streamed(path: string, body: unknown, signal: AbortSignal, onProgress: (done: number, total: number) => void): Promise<RenderedResult> {
  const res = await fetch(path, { method: "POST", headers: { "content-type": "application/json", accept: "text/event-stream" }, body: JSON.stringify(body), signal });
  if (!res.ok || !res.body) throw new Error(((await res.json()) as { error?: string }).error ?? `${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the stream ended without a result");
    buf += value;
    let cut: number;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
      const name = /^event: (.*)$/m.exec(block)?.[1], data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null") as Record<string, unknown>;
      if (name === "progress") onProgress(data.done as number, data.total as number);
      else if (name === "result") return data as unknown as RenderedResult;
      else if (name === "error") throw new Error(data.error as string);
    }
  }
}

function techniqueForm(t: TechniqueListing, prompt: () => string): HTMLElement {
  const schema = t.input as ObjectSchema, required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties ?? {}).map(([name, f]) => ({ name, ...fieldInput(`tech-${t.name}-${name}`, name, f, required.has(name), prompt) }));
  const run = el("button", { textContent: "Run", className: "secondary", id: `tech-${t.name}-run` });
  const cancel = el("button", { textContent: "Cancel", className: "secondary", disabled: true });
  const progress = el("progress", { max: 1, value: 0, hidden: true });
  const error = el("div", { className: "error", role: "alert", id: `tech-${t.name}-error` });
  const out = el("div", { className: "scroll", id: `tech-${t.name}-out` });
  let ac: AbortController | null = null;
  cancel.addEventListener("click", () => ac?.abort());
  run.addEventListener("click", () => void (async () => {
    error.textContent = "";
    ac = new AbortController();
    run.disabled = true; cancel.disabled = !t.long; progress.hidden = !t.long; progress.value = 0;
    try {
      const body: Record<string, unknown> = {};
      for (const f of fields) { const v = f.read(); if (v !== undefined) body[f.name] = v; }
      const path = `/api/${t.name}?render=1`;
      const r = t.long
        ? await streamed(path, body, ac.signal, (d, n) => { progress.max = n; progress.value = d; })
        : await (async () => {
          const res = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: ac!.signal });
          const doc = (await res.json()) as RenderedResult & { error?: string };
          if (!res.ok) throw new Error(doc.error ?? `${res.status}`);
          return doc;
        })();
      const pics = (r.pictures ?? []).filter((p) => p.name.endsWith(".svg")).map((p) => {
        const fig = el("figure", { className: "picture" });
        fig.innerHTML = p.content; // our own plot/ SVG, labels escaped there
        fig.dataset.name = p.name;
        return fig;
      });
      const json = el("a", { textContent: "result as JSON", download: `${t.name}.json`, href: URL.createObjectURL(new Blob([JSON.stringify(r.result, null, 2)], { type: "application/json" })) });
      out.replaceChildren(...pics, el("pre", { textContent: r.text ?? "" }), json);
      out.dataset.rendered = String(Number(out.dataset.rendered ?? "0") + 1);
    } catch (e) {
      error.textContent = ac.signal.aborted ? "cancelled" : (e as Error).message;
    } finally {
      run.disabled = false; cancel.disabled = true; progress.hidden = true;
    }
  })());
  return el("details", { id: `tech-${t.name}` },
    el("summary", {}, el("strong", { textContent: t.name }), ` — ${t.summary}`),
    ...fields.map((f) => f.node), el("div", { className: "row" }, run, cancel, progress), error, out);
}

/** Fill `root` with one form per technique the server lists. */
export async function mountTechniques(root: HTMLElement, prompt: () => string): Promise<void> {
  const res = await fetch("/api/techniques");
  const list = (await res.json()) as TechniqueListing[];
  root.replaceChildren(...list.map((t) => techniqueForm(t, prompt)));
}
