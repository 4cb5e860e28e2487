// The workbench's patching panel in headless Chromium (as test/web.test.ts; skipped only without
// Chromium or the shared tiny-gpt2 snapshot) on the README's IOI pair, whose clean and corrupted
// logit differences agree to ~2.6e-8: the panel shows a visible ill-conditioned warning naming the
// gap and the threshold, and the heatmap holds the API's raw logit differences under a "raw" title
// and legend, never "normalised".
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { TechniqueResult } from "../src/server/api-types.js";

/** The patch technique's result by pos or head: [layer][pos or head]. */
type PatchResponse = Omit<TechniqueResult<"patch">, "values"> & { values: number[][] };
import { noTinyGpt2, tinyGpt2 } from "./cli-helpers.js";
import { post, startServe } from "./server-helpers.js";

const CHROMIUM = process.env.CIRCUITSCOPE_CHROMIUM ?? "/usr/bin/chromium";
const skip = !existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM} (apt-get install chromium)` : noTinyGpt2;
const CLEAN = "When Mary and John went to the store, John gave a drink to";
const CORRUPTED = "When Mary and John went to the store, Mary gave a drink to";

test("the workbench's patch panel on tiny-gpt2's IOI pair warns that the metric is ill-conditioned and shows the raw logit difference", { skip, timeout: 180_000 }, async () => {
  const s = await startServe(tinyGpt2, "--quiet");
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(s.url);
    await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
    await page.fill("#clean", CLEAN);
    await page.fill("#corrupted", CORRUPTED);
    await page.fill("#answer", " Mary");
    await page.fill("#wrong", " John");
    assert.equal(await page.isVisible("#patch-warning"), false, "no warning before a run");
    await page.click("#patch-run");
    await page.waitForSelector("#patch[data-rendered] rect.cell", { timeout: 60_000 });
    assert.equal(await page.textContent("#patch-error"), "");

    const api = (await post<PatchResponse>(s.url + "api/patch", { clean: CLEAN, corrupted: CORRUPTED, answer: " Mary", wrong: " John" })).doc;
    assert.equal(api.metric.illConditioned, true);
    const warning = await page.textContent("#patch-warning") ?? "";
    assert.equal(await page.isVisible("#patch-warning"), true, "the warning is visible");
    assert.equal(warning, `ill-conditioned: clean − corrupted = ${api.metric.denominator.toExponential(2)}, below the threshold 1.0e-6 (1e-6 × max(1, |clean|, |corrupted|)), so the normalised metric would be noise; showing the raw logit difference instead.`);
    assert.match(warning, /clean − corrupted = -2\.6\de-8/);

    // The cells hold the API's raw logit differences (≈ 0.0366 each), not normalised values.
    const cells = await page.$$eval("#patch rect.cell", (els) => els.map((e) => [Number(e.getAttribute("data-row")), Number(e.getAttribute("data-col")), Number(e.getAttribute("data-value"))]));
    const got: number[][] = [];
    for (const [r, c, v] of cells) (got[r!] ??= [])[c!] = v!;
    assert.deepEqual(got, api.values);
    assert.ok(api.values.flat().every((v) => Math.abs(v - api.metric.cleanLogitDiff) < 1e-6), "raw values near the clean logit diff");
    const labels = await page.$$eval("#patch svg text", (els) => els.map((e) => e.textContent ?? ""));
    assert.ok(labels.includes("raw logit difference"), `legend: ${labels.join(" | ")}`);
    assert.ok(labels.some((l) => l.includes("raw logit difference (ill-conditioned, not normalised)")), "title");
    assert.ok(!labels.some((l) => /normalised metric|0 = corrupted/.test(l)), "nothing labelled as normalised");
    // Hovering a cell names it a raw logit difference.
    await page.hover("#patch rect.cell[data-row='1'][data-col='3']");
    assert.match(await page.textContent("#tooltip") ?? "", /: raw logit diff 0\.0366\d+$/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await s.stop();
  }
});
