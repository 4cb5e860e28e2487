// The workbench page in a real browser: `circuitscope serve` on a tiny model saved in Hugging Face
// layout, the page loaded in headless Chromium via playwright-core (as test/browser.test.ts; skipped
// only when no Chromium is installed). A prompt is typed and run; the attention heatmap's cells carry
// exactly the API's numbers (for two heads and both layers), the hover view shades tokens by the
// hovered query's weights, tokens are coloured by a hook's activation, the logit lens and the
// patching heatmap render with the API's values, and an invalid hook name shows the server's error
// message on the page. The page requests nothing but its own server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import type { TechniqueResult } from "../src/server/api-types.js";

/** The patch technique's result by pos or head: [layer][pos or head]. */
type PatchResponse = Omit<TechniqueResult<"patch">, "values"> & { values: number[][] };
import { post, startServe, tinySnapshot, type Served } from "./server-helpers.js";

const CHROMIUM = process.env.CIRCUITSCOPE_CHROMIUM ?? "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
const PROMPT = "Mary and John. John gave it to";
const CORRUPT = "Mary and John. Mohn gave it to";

type Browser = Awaited<ReturnType<typeof import("playwright-core").chromium.launch>>;
type Page = Awaited<ReturnType<Browser["newPage"]>>;
let s: Served, dir: string, browser: Browser | undefined;

before(async () => {
  if (skip) return;
  const snap = tinySnapshot("circuitscope-web-");
  dir = snap.dir;
  s = await startServe(snap.folder, "--quiet");
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => { await browser?.close(); await s?.stop(); if (dir) rmSync(dir, { recursive: true, force: true }); });

/** The rendered-count of a view, to wait for its next render. */
const rendered = (page: Page, sel: string) => page.$eval(sel, (e) => Number((e as HTMLElement).dataset.rendered ?? "0"));
async function waitRender(page: Page, sel: string, before: number): Promise<void> {
  await page.waitForFunction(([q, n]) => Number((document.querySelector(q as string) as HTMLElement | null)?.dataset.rendered ?? "0") > (n as number), [sel, before] as const, { timeout: 20_000 });
}

/** The main heatmap's cells as [row][col] numbers, read back from data-value. */
async function heatmapValues(page: Page, sel: string): Promise<number[][]> {
  const cells = await page.$$eval(`${sel} rect.cell`, (els) => els.map((e) => [Number(e.getAttribute("data-row")), Number(e.getAttribute("data-col")), Number(e.getAttribute("data-value"))]));
  const out: number[][] = [];
  for (const [r, c, v] of cells) (out[r!] ??= [])[c!] = v!;
  return out;
}

test("the workbench page: attention heatmaps equal the API, tokens coloured, lens and patching render, hook errors shown", { skip, timeout: 120_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 1300, height: 1000 } });
  const errors: string[] = [], foreign: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => { if (!r.url().startsWith(s.url)) foreign.push(r.url()); });
  await page.goto(s.url);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
  assert.match(await page.textContent("#model-info") ?? "", /2 layers × 2 heads/);

  await page.fill("#prompt", PROMPT);
  const n0 = await rendered(page, "#attn-heatmap"), l0 = await rendered(page, "#lens"), a0 = await rendered(page, "#act-tokens");
  await page.click("#run");
  await waitRender(page, "#attn-heatmap", n0);
  await waitRender(page, "#lens", l0);
  await waitRender(page, "#act-tokens", a0);
  assert.equal(await page.textContent("#error"), "");

  // Predictions: one token chip per position.
  assert.equal(await page.$$eval("#pred-tokens .tok", (e) => e.length), PROMPT.length);
  assert.equal(await page.$$eval("#predictions tr", (e) => e.length), 5);

  // Attention: the heatmap of head 0 of layer 0 holds the API's pattern exactly; then head 1; then layer 1.
  const api = async (layer: number) => (await post<TechniqueResult<"attention">>(s.url + "api/attention", { prompt: PROMPT, layer })).doc;
  const L0 = await api(0);
  assert.deepEqual(await heatmapValues(page, "#attn-heatmap"), L0.heads[0]!.pattern);
  assert.equal(await page.$$eval("#heads button", (e) => e.length), 2);
  const sc = L0.heads[0]!.scores;
  assert.equal(await page.textContent("#heads button[data-head='0'] .hint"),
    `prev ${sc.previous_token_head!.toFixed(2)} dup ${sc.duplicate_token_head!.toFixed(2)} ind ${sc.induction_head!.toFixed(2)}`);
  let n = await rendered(page, "#attn-heatmap");
  await page.click("#heads button[data-head='1']");
  await waitRender(page, "#attn-heatmap", n);
  assert.deepEqual(await heatmapValues(page, "#attn-heatmap"), L0.heads[1]!.pattern);
  assert.equal(await page.getAttribute("#heads button[data-head='1']", "aria-pressed"), "true");
  n = await rendered(page, "#attn-heatmap");
  await page.selectOption("#layer", "1");
  await waitRender(page, "#attn-heatmap", n);
  const L1 = await api(1);
  assert.deepEqual(await heatmapValues(page, "#attn-heatmap"), L1.heads[1]!.pattern);
  // Hovering a cell shows its query and key tokens and the weight.
  await page.hover("#attn-heatmap rect.cell[data-row='5'][data-col='2']");
  const tip = await page.textContent("#tooltip");
  assert.equal(tip, `query 5 "a" → key 2 "r": ${L1.heads[1]!.pattern[5]![2]!.toFixed(4)}`);
  assert.equal(await page.isVisible("#tooltip"), true);
  // The token view: hovering query token 9 shades every key token by its weight.
  await page.hover("#attn-tokens .tok:nth-child(10)");
  const weights = await page.$$eval("#attn-tokens .tok", (els) => els.map((e) => Number((e as HTMLElement).dataset.weight)));
  assert.deepEqual(weights, L1.heads[1]!.pattern[9]);
  assert.equal(await page.$$eval("#attn-tokens .tok.selected", (e) => e.length), 1);
  // From the keyboard: focus query token 3 and lock it with Enter; moving the mouse elsewhere keeps it.
  await page.focus("#attn-tokens .tok:nth-child(4)");
  await page.keyboard.press("Enter");
  await page.mouse.move(5, 5);
  assert.deepEqual(await page.$$eval("#attn-tokens .tok", (els) => els.map((e) => Number((e as HTMLElement).dataset.weight))), L1.heads[1]!.pattern[3]);
  await page.keyboard.press("Enter"); // unlock

  // Tokens coloured by the default hook's dimension 0, then by another dimension; values equal the API's.
  const hook = await page.inputValue("#hook");
  assert.equal(hook, "blocks.0.mlp.hook_post");
  const acts = (await post<TechniqueResult<"activations">>(s.url + "api/activations", { prompt: PROMPT, hook })).doc;
  const chips = () => page.$$eval("#act-tokens .tok", (els) => els.map((e) => ({ v: Number((e as HTMLElement).dataset.value), bg: (e as HTMLElement).style.background })));
  let got = await chips();
  assert.deepEqual(got.map((c) => c.v), acts.values.map((r) => r[0]));
  assert.ok(got.every((c) => /^rgb\(/.test(c.bg)), "every token has a background colour");
  assert.ok(new Set(got.map((c) => c.bg)).size > 3, "the colours vary with the values");
  const a1 = await rendered(page, "#act-tokens");
  await page.fill("#dim", "7");
  await waitRender(page, "#act-tokens", a1);
  got = await chips();
  assert.deepEqual(got.map((c) => c.v), acts.values.map((r) => r[7]));
  assert.match(await page.textContent("#act-info") ?? "", /shape \[30, 32\].*dimension 7/);
  // The strongest dimension is offered as a one-click pick.
  const peak = acts.values[0]!.map((_, d) => Math.max(...acts.values.map((v) => Math.abs(v[d]!))));
  const strongest = peak.indexOf(Math.max(...peak));
  assert.equal(await page.getAttribute("#act-top button:first-of-type", "data-dim"), String(strongest));
  const a2 = await rendered(page, "#act-tokens");
  await page.click("#act-top button:first-of-type");
  await waitRender(page, "#act-tokens", a2);
  assert.deepEqual((await chips()).map((c) => c.v), acts.values.map((r) => r[strongest]));
  assert.equal(await page.inputValue("#dim"), String(strongest));

  // Logit lens: layers × positions cells with the API's top-1 probabilities.
  const lens = (await post<TechniqueResult<"lens">>(s.url + "api/lens", { prompt: PROMPT, top: 3 })).doc;
  const probs = await page.$$eval("#lens tbody tr", (rows) => rows.map((r) => Array.from(r.querySelectorAll("td")).map((td) => Number((td as HTMLElement).dataset.prob))));
  assert.deepEqual(probs, lens.topTokens.map((row) => row.map((c) => c[0]!.prob)));

  // Tracking a token: cells carry its probability.
  await page.fill("#lens-target", "o");
  const l1 = await rendered(page, "#lens");
  await page.click("#lens-run");
  await waitRender(page, "#lens", l1);
  const tracked = (await post<TechniqueResult<"lens">>(s.url + "api/lens", { prompt: PROMPT, top: 3, target: "o" })).doc.target!;
  const tprobs = await page.$$eval("#lens tbody tr", (rows) => rows.map((r) => Array.from(r.querySelectorAll("td")).map((td) => Number((td as HTMLElement).dataset.targetProb))));
  assert.deepEqual(tprobs, tracked.prob);
  assert.match(await page.textContent("#lens caption") ?? "", /p\("o"\) and its rank/);

  // Patching: fill the pair, run, and read the heatmap back.
  await page.fill("#clean", PROMPT);
  await page.fill("#corrupted", CORRUPT);
  await page.fill("#answer", "M");
  await page.fill("#wrong", "J");
  const p0 = await rendered(page, "#patch");
  await page.click("#patch-run");
  await waitRender(page, "#patch", p0);
  assert.equal(await page.textContent("#patch-error"), "");
  const patch = (await post<PatchResponse>(s.url + "api/patch", { clean: PROMPT, corrupted: CORRUPT, answer: "M", wrong: "J" })).doc;
  assert.deepEqual(await heatmapValues(page, "#patch"), patch.values);
  // A well-conditioned pair: normalised, no ill-conditioned warning (test/web-ill-conditioned.test.ts has the other case).
  assert.equal(patch.metric.illConditioned, false);
  assert.equal(await page.textContent("#patch-warning"), "");
  assert.equal(await page.isVisible("#patch-warning"), false);
  const labels = await page.$$eval("#patch svg text", (els) => els.map((e) => e.textContent));
  for (const l of ["layer 0", "layer 1", "15 J/M", "layer", "position (clean/corrupted token)", "normalised metric"]) assert.ok(labels.includes(l), `patching heatmap label ${l}`);

  // By head: pick a per-head site; the heatmap is layer × head with the API's values.
  await page.selectOption("#site", "z");
  const p1 = await rendered(page, "#patch");
  await page.click("#patch-run");
  await waitRender(page, "#patch", p1);
  const byHead = (await post<PatchResponse>(s.url + "api/patch", { clean: PROMPT, corrupted: CORRUPT, answer: "M", wrong: "J", by: "head", site: "z" })).doc;
  assert.deepEqual(await heatmapValues(page, "#patch"), byHead.values);
  const headLabels = await page.$$eval("#patch svg text", (els) => els.map((e) => e.textContent));
  for (const l of ["head 0", "head 1", "head"]) assert.ok(headLabels.includes(l), `by-head heatmap label ${l}`);

  // A bad patching pair shows the server's message.
  await page.fill("#answer", "Ma");
  await page.click("#patch-run");
  await page.waitForFunction(() => (document.getElementById("patch-error")?.textContent ?? "") !== "", undefined, { timeout: 20_000 });
  assert.match(await page.textContent("#patch-error") ?? "", /"answer": "Ma" is 2 tokens/);

  // An invalid hook name: the server's error, near matches included, appears on the page.
  await page.fill("#hook", "blocks.0.mlp.hook_pots");
  await page.click("#act-run");
  await page.waitForFunction(() => (document.getElementById("act-error")?.textContent ?? "") !== "", undefined, { timeout: 20_000 });
  assert.equal(await page.textContent("#act-error"), '"hook": unknown hook point "blocks.0.mlp.hook_pots"; did you mean "blocks.0.mlp.hook_post", "blocks.0.mlp.hook_pre", "blocks.1.mlp.hook_post"?');
  assert.equal(await page.$$eval("#act-tokens .tok", (e) => e.length), 0);
  assert.equal(await page.isVisible("#act-error"), true);

  // A prompt the tokenizer cannot encode: the server's message, and no views of the earlier prompt left.
  await page.fill("#prompt", "Mary é");
  await page.click("#run");
  await page.waitForFunction(() => (document.getElementById("error")?.textContent ?? "") !== "", undefined, { timeout: 20_000 });
  assert.match(await page.textContent("#error") ?? "", /no id for "é"/);
  assert.equal(await page.$$eval("#attn-heatmap rect.cell, #lens td, #pred-tokens .tok", (e) => e.length), 0);

  // The address carries the prompt: opening it runs that prompt.
  assert.equal(new URL(page.url()).hash, `#prompt=${encodeURIComponent("Mary é")}`);
  const shared = await browser!.newPage();
  shared.on("pageerror", (e) => errors.push(e.message));
  await shared.goto(`${s.url}#prompt=${encodeURIComponent("abc")}`);
  await shared.waitForSelector("#attn-heatmap[data-rendered]", { timeout: 30_000 });
  assert.equal(await shared.inputValue("#prompt"), "abc");
  assert.equal((await heatmapValues(shared, "#attn-heatmap")).length, 3);
  await shared.close();

  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, []);
  await page.close();
});
