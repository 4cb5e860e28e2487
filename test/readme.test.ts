// The README's library example runs as written (on the small real GPT-2 snapshot in ../shared,
// whose 2 layers and 2 heads stand in for GPT-2 small's 12 and 12).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as cs from "../src/index.js";

const folder = fileURLToPath(new URL("../../../shared/models/tiny-gpt2", import.meta.url));
const skip = existsSync(folder) ? false : `no snapshot at ${folder}`;

test("README example: load, cache, direct logit attribution, head ablation", { skip }, () => {
  const { model, tokenizer } = cs.loadPretrained(folder);
  const { tokens } = cs.toTokens(tokenizer!, "When Mary and John went to the store, John gave a drink to");
  const { logits, cache } = cs.noGrad(() => model.runWithCache(tokens));
  const L = model.cfg.n_layers - 1, H = model.cfg.n_heads;
  assert.deepEqual(cache.get(`blocks.${L}.attn.hook_pattern`).shape, [1, H, tokens.shape[1], tokens.shape[1]]);
  const dla = cache.logitAttrs(cache.applyLnToStack(cache.decomposeResid()), { token: 5335 });
  assert.equal(dla.labels.length, dla.components.shape[0]);
  const keep = cs.ones([1, 1, H, 1]); keep.data[H - 1] = 0;
  const ablated = cs.noGrad(() => model.runWithHooks(tokens, { fwd: [[cs.attnHook(L, "z"), (z) => z.mul(keep)]] }));
  assert.deepEqual(ablated.shape, logits.shape);
  assert.notDeepEqual(Array.from(ablated.toArray()), Array.from(logits.toArray()));
});
