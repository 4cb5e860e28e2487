// Prompts and tokens as ids, so a snapshot without a tokenizer works on every surface: the CLI takes
// "[1,403,407]" for a prompt and "[5]" for a token, the API takes JSON lists and numbers, and the
// numbers equal the same ids run as text through a tokenizer.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { useBackend } from "../src/backend/init.js";
import { loadSubject } from "../src/techniques/subject.js";
import { lens, runTechnique } from "../src/techniques/index.js";
import { cli, repo } from "./cli-helpers.js";
import { tinySnapshot } from "./server-helpers.js";

useBackend();
const llama = path.resolve(repo, "../shared/models/tiny-random-llama");
const skip = fs.existsSync(llama) ? false : `no snapshot at ${llama}`;

test("a tokenizer-less snapshot takes token ids on the CLI; text names the missing tokenizer", { skip }, () => {
  const r = cli("lens", llama, "[1,403,407]", "--target", "[5]", "--top", "2", "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { tokens: { id: number }[]; target: { id: number } };
  assert.deepEqual(doc.tokens.map((t) => t.id), [1, 403, 407]);
  assert.equal(doc.target.id, 5);
  const text = cli("lens", llama, "hello", "--json");
  assert.equal(text.code, 2);
  assert.match(text.stdout, /<prompt>: .*has no tokenizer\.json/);
  const big = cli("lens", llama, "[1,32000]", "--json");
  assert.equal(big.code, 2);
  assert.match(big.stdout, /token id 32000 is outside the vocabulary \(d_vocab = 32000\)/);
});

test("ids give the same result as the text they encode (ids are used as given: no BOS is added)", async () => {
  const { dir, folder } = tinySnapshot("circuitscope-ids-");
  try {
    const s = loadSubject(folder);
    const asText = await runTechnique(lens, s, { prompt: "hello", target: "o", bos: false });
    const ids = asText.tokens.map((t) => t.id);
    const asIds = await runTechnique(lens, s, { prompt: ids, target: asText.target!.id, bos: false });
    assert.deepEqual(asIds, asText);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});
