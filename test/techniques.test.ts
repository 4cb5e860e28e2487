// Every technique descriptor on every surface: for each one, a sample input runs through the library
// (runTechnique), the CLI (`circuitscope <name> --json`) and the API (POST /api/<name>) on one small
// snapshot, and the three answers are the same to the last bit; the CLI has a flag for every input
// field, GET /api/techniques lists it with its JSON Schema, and the page has its form and runs it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { useBackend } from "../src/backend/init.js";
import { loadSubject } from "../src/techniques/subject.js";
import { runTechnique, TECHNIQUES, type TechniqueName } from "../src/techniques/index.js";
import { kebab } from "../src/cli/technique-command.js";
import type { TechniqueListing } from "../src/server/api-types.js";
import { cli } from "./cli-helpers.js";
import { post, startServe, tinySnapshot, type Served } from "./server-helpers.js";

// The backend the CLI and the server pick, so the three surfaces run the same kernels.
useBackend();
const { dir, folder } = tinySnapshot("circuitscope-techniques-");
const corpus = path.join(dir, "corpus.txt");
fs.writeFileSync(corpus, "the cat sat on the mat. the dog sat on the log! A cat, a dog, a mat? Then the cat ran. ".repeat(4));

/** One input per technique, as JSON (the API's body; the CLI's flags are made from it). */
const SAMPLES: Record<TechniqueName, Record<string, unknown>> = {
  lens: { prompt: "hello world", target: "o", top: 2 },
  probe: { a: "the cat sat", b: "the dog sat", answer: "a", wrong: "o", top: 5 },
  patch: { clean: "Mary and John. John gave it to", corrupted: "Mary and John. Mohn gave it to", answer: "M", wrong: "J", by: "head", method: "both" },
  "path-patch": { clean: "Mary and John. John gave it to", corrupted: "Mary and John. Mohn gave it to", answer: "M", wrong: "J", receiver: "1.1:k", direction: "denoising", freezeMlps: true },
  discover: { clean: "Mary and John. John gave it to", corrupted: "Mary and John. Mohn gave it to", answer: "M", wrong: "J", method: "eap-ig", steps: 3, topN: 6 },
  scrub: {
    hypothesis: { name: "L1H0 reads tokens", output: [{ node: "head", layer: 1, head: 0, feature: "whole", q: [{ node: "embed", feature: "token" }] }] },
    data: [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [1, 3, 5, 7, 9, 11], [2, 4, 6, 8, 10, 12], [7, 7, 8, 8, 9, 9]], samples: 12, seed: 1, positions: "1-4",
  },
  circuits: { seqLen: 6, batch: 2, seed: 1 },
  "qk-ov": { heads: "1.0,0.1", first: 3, positions: 4 },
  neurons: { corpus, layer: 1, top: 2, k: 2, ctx: 8, maxWindows: 4, batch: 2, bins: 5 },
  attention: { prompt: "abcabc", heads: "1.0,0.1", cols: 2 },
  dla: { prompt: "hello", answer: "o", wrong: "a", neuronLayer: 1, topNeurons: 3 },
  ablate: { prompt: "hello", answer: "o", wrong: "a", kind: "resample", reference: "world", seed: 1, sweep: "positions", top: 3 },
  activations: { prompt: "hello", hook: "blocks.0.attn.hook_z" },
  attribute: { prompt: "hello", target: "o", method: "ig", steps: 8, rule: "riemann_middle", baseline: "pad", batch: 4, layer: "blocks.0.hook_resid_post" },
};

/** The CLI arguments for a sample: positionals in order, then one flag per other field. */
function argv(name: TechniqueName, input: Record<string, unknown>): string[] {
  const t = TECHNIQUES.find((x) => x.name === name)!, pos = t.positionals ?? [];
  const flags = Object.entries(input).filter(([k]) => !pos.includes(k)).flatMap(([k, v]) =>
    typeof v === "boolean" ? (v ? [`--${kebab(k)}`] : [`--no-${kebab(k)}`]) : [`--${kebab(k)}`, typeof v === "object" ? JSON.stringify(v) : String(v)]);
  return [name, folder, ...pos.map((p) => String(input[p])), ...flags, "--json"];
}

let server: Served;
before(async () => { server = await startServe(folder, "--data-dir", dir); });
after(async () => { await server.stop(); fs.rmSync(dir, { recursive: true, force: true }); });

test("every descriptor has a sample here", () => {
  assert.deepEqual(Object.keys(SAMPLES).sort(), TECHNIQUES.map((t) => t.name).sort());
});

for (const t of TECHNIQUES) {
  const name = t.name as TechniqueName;
  test(`${name}: library, CLI --json and API give identical results`, async () => {
    const input = SAMPLES[name];
    const lib = JSON.parse(JSON.stringify(await runTechnique(t, loadSubject(folder), input))) as Record<string, unknown>;
    const r = cli(...argv(name, input));
    assert.equal(r.code, 0, r.stderr);
    const { model, files, ...fromCli } = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(model, folder);
    assert.deepEqual(files, []);
    assert.deepEqual(fromCli, lib);
    const api = await post<Record<string, unknown>>(`${server.url}api/${name}`, input);
    assert.equal(api.status, 200, JSON.stringify(api.doc));
    assert.deepEqual(api.doc, lib);
  });

  test(`${name}: the CLI has a flag (or positional) for every field; the API lists its schema and names a bad field`, async () => {
    const help = cli(name, "--help");
    assert.equal(help.code, 0, help.stderr);
    const fields = Object.keys(t.input.shape);
    for (const f of fields) {
      const shown = (t.positionals ?? []).includes(f) ? `<${kebab(f)}>` : new RegExp(`--(no-)?${kebab(f)}\\b`);
      assert.ok(typeof shown === "string" ? help.stdout.includes(shown) : shown.test(help.stdout), `--help of ${name} shows ${f}`);
    }
    const list = (await (await fetch(`${server.url}api/techniques`)).json()) as TechniqueListing[];
    const entry = list.find((x) => x.name === name)!;
    assert.ok(entry, `${name} is listed`);
    assert.deepEqual(Object.keys((entry.input as { properties: object }).properties).sort(), [...fields].sort());
    // A value no field type takes (a list of lists) in the technique's first field.
    const first = fields[0]!;
    const bad = await post<{ error: string }>(`${server.url}api/${name}`, { ...SAMPLES[name], [first]: [[]] });
    assert.equal(bad.status, 400);
    assert.match(bad.doc.error, new RegExp(`^"${first}"`));
  });
}

test("render=1 answers the CLI's text and pictures beside the result", async () => {
  const r = await post<{ result: unknown; text: string; pictures: { name: string; content: string }[] }>(`${server.url}api/lens?render=1`, SAMPLES.lens);
  assert.equal(r.status, 200);
  assert.match(r.doc.text, /^logit lens/);
  assert.equal(r.doc.pictures[0]!.name, "lens.svg");
  assert.match(r.doc.pictures[0]!.content, /^<svg/);
  const cliOut = fs.mkdtempSync(path.join(dir, "out-"));
  assert.equal(cli(...argv("lens", SAMPLES.lens), "--out", cliOut).code, 0);
  assert.equal(fs.readFileSync(path.join(cliOut, "lens.svg"), "utf8"), r.doc.pictures[0]!.content, "the file the CLI writes is the picture the page shows");
});

test("a technique request streams progress and its result as server-sent events", async () => {
  const res = await fetch(`${server.url}api/lens`, { method: "POST", headers: { "content-type": "application/json", accept: "text/event-stream" }, body: JSON.stringify(SAMPLES.lens) });
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const text = await res.text();
  const result = /event: result\ndata: (.*)\n/.exec(text);
  assert.ok(result, text);
  assert.deepEqual((JSON.parse(result[1]!) as { result: unknown }).result, (await post(`${server.url}api/lens`, SAMPLES.lens)).doc);
});

const CHROMIUM = process.env.CIRCUITSCOPE_CHROMIUM ?? "/usr/bin/chromium";
const noChromium = fs.existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;

test("the page has a form for every technique, and running one shows the API's picture", { skip: noChromium, timeout: 120_000 }, async () => {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
    for (const t of TECHNIQUES) {
      assert.ok(await page.$(`#tech-${t.name}`), `a form for ${t.name}`);
      for (const f of Object.keys(t.input.shape)) assert.ok(await page.$(`#tech-${t.name}-${f}`), `${t.name} has an input for ${f}`);
    }
    // Probe through the generic form: fill the pair, run, read the figure back.
    await page.click("#tech-probe > summary");
    for (const [k, v] of Object.entries(SAMPLES.probe)) await page.fill(`#tech-probe-${k}`, String(v));
    await page.click("#tech-probe-run");
    await page.waitForFunction(() => Number((document.querySelector("#tech-probe-out") as HTMLElement).dataset.rendered ?? "0") > 0, undefined, { timeout: 30_000 });
    assert.equal(await page.textContent("#tech-probe-error"), "");
    const shown = await page.$eval("#tech-probe-out figure[data-name='probe.svg']", (e) => ({ texts: Array.from(e.querySelectorAll("text")).map((t) => t.textContent), rects: e.querySelectorAll("rect").length }));
    const api = await post<{ pictures: { name: string; content: string }[] }>(`${server.url}api/probe?render=1`, SAMPLES.probe);
    // The same SVG, parsed by the browser from the API's answer: the same labels and the same cells.
    const want = await page.evaluate((svg) => {
      const d = new DOMParser().parseFromString(svg, "image/svg+xml");
      return { texts: Array.from(d.querySelectorAll("text")).map((t) => t.textContent), rects: d.querySelectorAll("rect").length };
    }, api.doc.pictures[0]!.content);
    assert.deepEqual(shown, want);
    assert.ok(shown.rects > 10 && shown.texts.some((t) => t?.includes("residual divergence")), "the probe's heatmaps are drawn");
    // A bad field shows the server's message in the form's alert.
    await page.fill("#tech-probe-top", "0");
    await page.click("#tech-probe-run");
    await page.waitForFunction(() => (document.querySelector("#tech-probe-error")?.textContent ?? "") !== "", undefined, { timeout: 30_000 });
    assert.match(await page.textContent("#tech-probe-error") ?? "", /"top"/);
  } finally {
    await browser.close();
  }
});
