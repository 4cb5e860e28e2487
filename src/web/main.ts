// The workbench page's script (bundled by scripts/build-web.mjs into dist/web/app.js): reads the
// model's info, then on Run asks the server's API for predictions, attention patterns, activations
// and the logit lens, and draws them; patching runs on its own button. Plain DOM, no framework.
// Every view shows the server's error message in its own alert box; nothing is fetched from the
// network beyond this server.
import type {
  ErrorResponse, InfoResponse, RunResponse, Token,
  TechniqueInput, TechniqueName, TechniqueResult,
} from "../server/api-types.js";
import { mountTechniques } from "./techniques.js";
import { visibleToken } from "../plot/tokens.js";
import { diverging, fmt, heatmapSvg, svgEl, textOn, Tooltip, topDims, viridis } from "./heatmap.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const tooltip = new Tooltip($("tooltip"));

/** POST (or GET without a body) to the API; throws the server's error message. */
async function api<T>(path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const doc = (await res.json()) as T | ErrorResponse;
  if (!res.ok) throw new Error((doc as ErrorResponse).error ?? `${res.status} ${res.statusText}`);
  return doc as T;
}

/** POST /api/<technique>: the body and the answer typed by the technique's descriptor. */
const technique = <N extends TechniqueName>(name: N, body: TechniqueInput<N>) => api<TechniqueResult<N>>(`/api/${name}`, body);

/** Run fn, showing its error (or clearing the box) in the alert element `errId`. */
async function guarded(errId: string, fn: () => Promise<void>): Promise<void> {
  const box = $(errId);
  box.textContent = "";
  try { await fn(); } catch (e) { box.textContent = (e as Error).message; }
}

const shown = (t: Token | string) => visibleToken(typeof t === "string" ? t : t.str);

/** A token chip; hover shows `tip` in the tooltip. */
function chip(t: Token, tip: string, bg?: string): HTMLSpanElement {
  const s = document.createElement("span");
  s.className = "tok";
  s.textContent = shown(t);
  s.title = tip;
  if (bg) { s.style.background = bg; s.style.color = textOn(bg); }
  s.onmousemove = (e) => tooltip.show(e, tip);
  s.onmouseleave = () => tooltip.hide();
  return s;
}

/** Make a chip reachable with Tab and activated with Enter or Space, like a button. */
function keyboard(el: HTMLElement, activate: () => void): void {
  el.tabIndex = 0;
  el.setAttribute("role", "button");
  el.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); activate(); } });
}

const markRendered = (el: HTMLElement) => { el.dataset.rendered = String(Number(el.dataset.rendered ?? "0") + 1); };

let info: InfoResponse;
/** The prompt as typed now (every view reads it when it asks the server). */
const currentPrompt = () => $<HTMLTextAreaElement>("prompt").value;

// ---- next-token predictions -------------------------------------------------------------------
function renderPredictions(r: RunResponse, pos: number): void {
  const row = $("pred-tokens"); row.replaceChildren();
  r.tokens.forEach((t, i) => {
    const c = chip(t, `position ${i}, id ${t.id}: click for predictions`);
    if (i === pos) c.classList.add("selected");
    c.style.cursor = "pointer";
    c.addEventListener("click", () => renderPredictions(r, i));
    keyboard(c, () => { renderPredictions(r, i); ($("pred-tokens").children[i] as HTMLElement).focus(); });
    row.append(c);
  });
  const table = document.createElement("table"); table.className = "preds";
  const cap = document.createElement("caption"); cap.className = "hint"; cap.style.textAlign = "left";
  cap.textContent = `after position ${pos} (${JSON.stringify(r.tokens[pos]!.str)})`;
  table.append(cap);
  for (const p of r.predictions[pos]!) {
    const tr = table.insertRow();
    tr.insertCell().textContent = shown(p);
    tr.insertCell().textContent = `${(100 * p.prob).toFixed(2)}%`;
    const bar = tr.insertCell(); const b = document.createElement("div");
    b.style.cssText = `height:10px;width:${Math.round(200 * p.prob)}px;background:${viridis(0.35)}`; bar.append(b);
  }
  $("predictions").replaceChildren(table);
  markRendered($("predictions"));
}

// ---- activations: tokens coloured by one hook's value ------------------------------------------
let activations: TechniqueResult<"activations"> | null = null;

function renderActivations(): void {
  const r = activations;
  if (!r) return;
  const D = r.values[0]?.length ?? 0;
  const mode = $<HTMLSelectElement>("act-mode").value;
  const dimInput = $<HTMLInputElement>("dim");
  dimInput.max = String(Math.max(0, D - 1));
  const dim = Math.min(Math.max(0, Math.floor(Number(dimInput.value) || 0)), D - 1);
  dimInput.value = String(dim);
  const vals = r.values.map((v) => (mode === "norm" ? Math.sqrt(v.reduce((s, x) => s + x * x, 0)) : v[dim]!));
  const max = Math.max(1e-12, ...vals.map(Math.abs));
  // Signed values on blue–white–red around 0; norms (≥ 0) on viridis.
  const colour = (v: number) => (mode === "norm" ? viridis(v / max) : diverging(v / max));
  $("act-info").textContent = `${r.hook}: shape [${r.shape.join(", ")}] (${r.axes.join(", ")}); ${D} values per position; ` +
    (mode === "norm" ? "colour: L2 norm per position" : `colour: dimension ${dim}`) + `; max |value| ${fmt(max)}`;
  // The dimensions with the largest |activation| anywhere in the prompt, as one-click picks.
  const peak = Array.from({ length: D }, (_, d) => Math.max(...r.values.map((v) => Math.abs(v[d]!))));
  const top = topDims(peak, 8);
  const picks = $("act-top"); picks.replaceChildren(Object.assign(document.createElement("span"), { className: "hint", textContent: "largest |value|:" }));
  for (const d of top) {
    const b = Object.assign(document.createElement("button"), { className: "secondary", textContent: `${d} (${fmt(peak[d]!)})` });
    b.dataset.dim = String(d);
    b.setAttribute("aria-pressed", String(mode === "dim" && d === dim));
    b.addEventListener("click", () => { $<HTMLSelectElement>("act-mode").value = "dim"; dimInput.value = String(d); renderActivations(); });
    picks.append(b);
  }
  const row = $("act-tokens"); row.replaceChildren();
  r.tokens.forEach((t, i) => {
    const c = chip(t, `${i} ${JSON.stringify(t.str)}: ${fmt(vals[i]!)}`, colour(vals[i]!));
    c.dataset.value = String(vals[i]);
    row.append(c);
  });
  $("act-legend").textContent = mode === "norm" ? `dark purple 0 … yellow ${fmt(max)}` : `blue −${fmt(max)} … white 0 … red +${fmt(max)}`;
  markRendered(row);
}

async function loadActivations(): Promise<void> {
  await guarded("act-error", async () => {
    activations = null;
    $("act-top").replaceChildren();
    $("act-tokens").replaceChildren(); $("act-info").textContent = ""; $("act-legend").textContent = "";
    activations = await technique("activations", { prompt: currentPrompt(), hook: $<HTMLInputElement>("hook").value.trim() });
    renderActivations();
  });
}

// ---- attention patterns ------------------------------------------------------------------------
let attention: TechniqueResult<"attention"> | null = null;
let head = 0;
let locked: number | null = null;

function renderAttention(): void {
  const r = attention;
  if (!r) return;
  const T = r.tokens.length, labels = r.tokens.map((t, i) => `${i} ${shown(t)}`);
  head = Math.min(head, r.heads.length - 1);
  // Head picker: a thumbnail of every head's pattern.
  const heads = $("heads"); heads.replaceChildren();
  r.heads.forEach(({ pattern: p, scores: sc }, h) => {
    const b = document.createElement("button");
    b.setAttribute("aria-pressed", String(h === head));
    b.setAttribute("aria-label", `head ${h}`);
    b.dataset.head = String(h);
    const s = Math.max(2, Math.floor(60 / T));
    const svg = svgEl("svg", { width: s * T, height: s * T, "aria-hidden": "true" });
    for (let q = 0; q < T; q++) for (let k = 0; k < T; k++) svg.append(svgEl("rect", { x: k * s, y: q * s, width: s, height: s, fill: viridis(p[q]![k]!) }));
    const f = (v: number | null) => (v === null ? "—" : v.toFixed(2));
    const score = document.createElement("span");
    score.className = "hint";
    score.textContent = `prev ${f(sc.previous_token_head)} dup ${f(sc.duplicate_token_head)} ind ${f(sc.induction_head)}`;
    b.title = `L${r.layer}H${h} on this prompt: previous-token ${f(sc.previous_token_head)}, duplicate-token ${f(sc.duplicate_token_head)}, induction ${f(sc.induction_head)} (mean attention on the targets; — when the prompt has none)`;
    b.append(svg, document.createTextNode(`L${r.layer}H${h}`), score);
    b.addEventListener("click", () => { head = h; renderAttention(); });
    heads.append(b);
  });
  const p = r.heads[head]!.pattern, hook = `blocks.${r.layer}.attn.hook_pattern`;
  const map = heatmapSvg({
    values: p, rowLabels: labels, colLabels: labels, xLabel: "key (source) token", yLabel: "query (destination) token",
    colour: (v) => viridis(v), cell: Math.max(8, Math.min(22, Math.floor(720 / T))), title: `L${r.layer}H${head}: ${hook}[0, ${head}]`, legend: { lo: 0, hi: 1, label: "attention weight" },
    onHover: (q, k, v) => `query ${q} ${JSON.stringify(r.tokens[q]!.str)} → key ${k} ${JSON.stringify(r.tokens[k]!.str)}: ${v.toFixed(4)}`,
  }, tooltip);
  $("attn-heatmap").replaceChildren(map);
  buildAttnTokens();
  markRendered($("attn-heatmap"));
}

/** CircuitsVis's token view: chips built once per render, then shaded in place (no re-render under the pointer). */
function buildAttnTokens(): void {
  const r = attention!;
  const row = $("attn-tokens"); row.replaceChildren();
  r.tokens.forEach((t, k) => {
    const c = chip(t, "");
    const toggle = () => { locked = locked === k ? null : k; shadeAttnTokens(locked ?? k); };
    c.addEventListener("mouseenter", () => { if (locked === null) shadeAttnTokens(k); });
    c.addEventListener("click", toggle);
    keyboard(c, toggle);
    c.addEventListener("focus", () => { if (locked === null) shadeAttnTokens(k); });
    row.append(c);
  });
  row.onmouseleave = () => { if (locked === null) shadeAttnTokens(null); };
  shadeAttnTokens(locked);
}

/** With query token q chosen, every key token is shaded by q's attention weight on it (viridis). */
function shadeAttnTokens(q: number | null): void {
  const r = attention!, p = r.heads[head]!.pattern;
  const chips = $("attn-tokens").children;
  r.tokens.forEach((t, k) => {
    const c = chips[k] as HTMLElement, w = q === null ? null : p[q]![k]!;
    const tip = q === null ? `${k} ${JSON.stringify(t.str)}: hover to see where it attends` : `${q} ${JSON.stringify(r.tokens[q]!.str)} attends to ${k} ${JSON.stringify(t.str)}: ${w!.toFixed(4)}`;
    c.title = tip;
    c.onmousemove = (e) => tooltip.show(e, tip);
    const bg = w === null ? "" : viridis(w);
    c.style.background = bg; c.style.color = bg ? textOn(bg) : "";
    c.classList.toggle("selected", k === q);
    if (w === null) delete c.dataset.weight; else c.dataset.weight = String(w);
  });
}

async function loadAttention(): Promise<void> {
  await guarded("attn-error", async () => {
    attention = await technique("attention", { prompt: currentPrompt(), layer: Number($<HTMLSelectElement>("layer").value) });
    locked = null;
    renderAttention();
  });
}

// ---- logit lens --------------------------------------------------------------------------------
async function loadLens(): Promise<void> {
  await guarded("lens-error", async () => {
    const target = $<HTMLInputElement>("lens-target").value;
    const r = await technique("lens", { prompt: currentPrompt(), top: 3, ...(target ? { target } : {}) });
    const tg = r.target;
    const table = document.createElement("table"); table.className = "lens";
    const head = table.createTHead().insertRow();
    head.append(Object.assign(document.createElement("th"), { textContent: "layer \\ position" }));
    r.tokens.forEach((t, i) => head.append(Object.assign(document.createElement("th"), { textContent: `${i} ${shown(t)}`, scope: "col" })));
    const body = table.createTBody();
    r.axes[0]!.labels.forEach((name, l) => {
      const tr = body.insertRow();
      tr.append(Object.assign(document.createElement("th"), { textContent: name, scope: "row" }));
      r.topTokens[l]!.forEach((top, p) => {
        const td = tr.insertCell(), best = top[0]!;
        // Coloured by the top token's probability, or with a tracked token by that token's.
        const prob = tg ? tg.prob[l]![p]! : best.prob, bg = viridis(prob);
        td.style.background = bg; td.style.color = textOn(bg);
        td.textContent = tg ? `${prob.toFixed(2)} #${tg.rank[l]![p]! + 1}` : `${shown(best)} ${best.prob.toFixed(2)}`;
        td.dataset.prob = String(best.prob);
        if (tg) td.dataset.targetProb = String(prob);
        const tip = `${name}, position ${p} ${JSON.stringify(r.tokens[p]!.str)}:\n` + top.map((t) => `${JSON.stringify(t.str).padEnd(10)} ${(100 * t.prob).toFixed(2)}%`).join("\n") +
          (tg ? `\n${JSON.stringify(tg.str)}: ${(100 * prob).toFixed(2)}%, rank ${tg.rank[l]![p]! + 1}` : "");
        td.title = tip;
        td.addEventListener("mousemove", (e) => tooltip.show(e, tip));
        td.addEventListener("mouseleave", () => tooltip.hide());
      });
    });
    const cap = table.createCaption(); cap.className = "hint"; cap.style.textAlign = "left";
    cap.textContent = tg ? `cells: p(${JSON.stringify(tg.str)}) and its rank (#1 = top); colour: that probability (viridis, 0 dark → 1 yellow)`
      : "cell colour: top-1 probability (viridis, 0 dark → 1 yellow)";
    $("lens").replaceChildren(table);
    markRendered($("lens"));
  });
}

// ---- activation patching -----------------------------------------------------------------------
async function loadPatch(): Promise<void> {
  await guarded("patch-error", async () => {
    $("patch").replaceChildren(); $("patch-info").textContent = "computing…"; $("patch-warning").textContent = "";
    const v = (id: string) => $<HTMLInputElement | HTMLSelectElement>(id).value;
    try {
      const site = v("site") as TechniqueInput<"patch">["site"] & string, by = ["z", "q", "k", "v", "pattern"].includes(site) ? "head" : "pos";
      const r = await technique("patch", { clean: v("clean"), corrupted: v("corrupted"), answer: v("answer"), wrong: v("wrong"), by, site, direction: v("direction") as "denoising" | "noising" });
      const m = r.metric, raw = m.illConditioned, values = r.values as number[][];
      const layers = r.axes[0]!.labels, columns = r.axes[1]!.labels;
      // At least ±1 either way: raw logit differences of an ill-conditioned pair are near-identical and stay pale, not bright.
      const max = Math.max(1, ...values.flat().map(Math.abs));
      if (raw) $("patch-warning").textContent = `ill-conditioned: clean − corrupted = ${m.denominator.toExponential(2)}, below the threshold ${m.threshold.toExponential(1)} (1e-6 × max(1, |clean|, |corrupted|)), so the normalised metric would be noise; showing the raw logit difference instead.`;
      $("patch-info").textContent = `${r.direction} ${r.site} by ${r.by}; logit diff ${JSON.stringify(r.answer.str)} − ${JSON.stringify(r.wrong.str)}: clean ${m.cleanLogitDiff.toFixed(3)}, corrupted ${m.corruptedLogitDiff.toFixed(3)}`;
      const byPos = r.by === "pos";
      // Position labels show spaces as "·" already (the technique's labels, "clean/corrupted" where they differ).
      $("patch").replaceChildren(heatmapSvg({
        values, rowLabels: layers.map((l) => `layer ${l}`), colLabels: columns.map((c, i) => (byPos ? `${i} ${c}` : `head ${c}`)),
        xLabel: byPos ? "position (clean/corrupted token)" : "head", yLabel: "layer", colour: (x) => diverging(x / max), cell: 26,
        title: raw ? `patched ${r.site}: raw logit difference (ill-conditioned, not normalised)` : `patched ${r.site}: normalised logit difference (0 = corrupted, 1 = clean)`,
        legend: { lo: -max, hi: max, label: raw ? "raw logit difference" : "normalised metric" },
        onHover: (l, c, x) => `layer ${layers[l]}, ${byPos ? `position ${c} ${JSON.stringify(r.corrupted.tokens[c]!.str === r.clean.tokens[c]!.str ? r.clean.tokens[c]!.str : `${r.clean.tokens[c]!.str}/${r.corrupted.tokens[c]!.str}`)}` : `head ${columns[c]}`}: ${raw ? `raw logit diff ${x.toPrecision(6)}` : x.toFixed(4)}`,
      }, tooltip));
      markRendered($("patch"));
    } catch (e) { $("patch-info").textContent = ""; $("patch-warning").textContent = ""; throw e; }
  });
}

// ---- wiring ------------------------------------------------------------------------------------
async function runAll(): Promise<void> {
  document.body.dataset.busy = "true";
  // The prompt goes into the address (#prompt=…), so a view can be bookmarked or shared.
  history.replaceState(null, "", `#prompt=${encodeURIComponent(currentPrompt())}`);
  await guarded("error", async () => {
    const r = await api<RunResponse>("/api/run", { prompt: currentPrompt(), top: 5 });
    renderPredictions(r, r.tokens.length - 1);
  });
  if ($("error").textContent === "") {
    await loadAttention();
    await loadActivations();
    await loadLens();
  } else {
    // Views of an earlier prompt would be misleading beside this prompt's error: clear them.
    attention = null; activations = null;
    for (const id of ["pred-tokens", "predictions", "heads", "attn-heatmap", "attn-tokens", "act-top", "act-tokens", "lens"]) $(id).replaceChildren();
    for (const id of ["act-info", "act-legend"]) $(id).textContent = "";
  }
  document.body.dataset.busy = "false";
}

async function init(): Promise<void> {
  info = await api<InfoResponse>("/api/info");
  const c = info.config;
  $("model-info").textContent = `model ${info.model}: ${c.architecture}, ${c.n_layers} layers × ${c.n_heads} heads, d_model ${c.d_model}, vocabulary ${c.d_vocab}; prompts up to ${info.maxTokens} tokens`;
  $("hook-names").replaceChildren(...info.hookNames.map((n) => Object.assign(document.createElement("option"), { value: n })));
  $("layer").replaceChildren(...Array.from({ length: c.n_layers }, (_, l) => Object.assign(document.createElement("option"), { value: String(l), textContent: String(l) })));
  const hook = $<HTMLInputElement>("hook");
  hook.value = info.hookNames.find((n) => n === (c.attn_only ? "blocks.0.hook_resid_post" : "blocks.0.mlp.hook_post")) ?? info.hookNames[0] ?? "";
  $<HTMLTextAreaElement>("prompt").value = "When Mary and John went to the store, John gave a drink to";
  $<HTMLInputElement>("clean").value = "When Mary and John went to the store, John gave a drink to";
  $<HTMLInputElement>("corrupted").value = "When Mary and John went to the store, Mary gave a drink to";
  $<HTMLInputElement>("answer").value = " Mary";
  $<HTMLInputElement>("wrong").value = " John";
  $("run").addEventListener("click", () => void runAll());
  $("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); void runAll(); } });
  $("act-run").addEventListener("click", () => void loadActivations());
  hook.addEventListener("keydown", (e) => { if (e.key === "Enter") void loadActivations(); });
  $("act-mode").addEventListener("change", renderActivations);
  $("dim").addEventListener("input", renderActivations);
  $("layer").addEventListener("change", () => void loadAttention());
  $("patch-run").addEventListener("click", () => void loadPatch());
  $("lens-run").addEventListener("click", () => void loadLens());
  $("lens-target").addEventListener("keydown", (e) => { if (e.key === "Enter") void loadLens(); });
  await mountTechniques($("techniques"), currentPrompt);
  document.body.dataset.ready = "true";
  const shared = new URLSearchParams(location.hash.slice(1)).get("prompt");
  if (shared !== null) { $<HTMLTextAreaElement>("prompt").value = shared; await runAll(); }
}

void init().catch((e: Error) => { $("error").textContent = `cannot reach the workbench server: ${e.message}`; });
