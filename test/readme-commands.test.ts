// Every command the README shows runs as written. The commands are read out of README.md (shell
// blocks, and inline code that starts with npx/npm/node/bash) and must equal the checked list below,
// which says for each how the test runs it: as written, or with flags appended that shrink its work
// (later flags win in the CLI's parser), or why it is covered elsewhere. The README's own `npx
// circuitscope` becomes this checkout's CLI, run by bash in a scratch folder beside a link to
// ../shared, so outputs land there and relative paths resolve as they do for a user in a clone.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { repo } from "./cli-helpers.js";

interface Entry {
  /** The command exactly as the README writes it (a shell line). */
  readme: string;
  /** Appended when the test runs it: smaller settings, so CI stays fast. */
  small?: string;
  /** Not run by this test: where it is run or checked instead. */
  covered?: string;
  /** Long-running servers: started, checked to be listening, then stopped. */
  serve?: boolean;
  /** Run from the repository root rather than the scratch folder (npm scripts, test files). */
  inRepo?: boolean;
}

// In run order: later commands read what earlier ones wrote (charlm/, sae/).
const COMMANDS: Entry[] = [
  { readme: "npm install && npm run demo", covered: ".ci/run runs the README's first two lines as written" },
  { readme: "npm test", covered: ".ci/run runs the README's first two lines as written" },
  { readme: "npm install", covered: ".ci/run runs `npm install` (the README's first line)" },
  { readme: "npx circuitscope run ../shared/models/tiny-gpt2 \"The Eiffel Tower is in\" --top 10 --generate 20" },
  { readme: "npx circuitscope serve ../shared/models/tiny-gpt2 --port 8080 --json", small: "--port 0", serve: true },
  { readme: "npx circuitscope run ../shared/models/stories260K/stories260K.bin \"Once upon a time\" --generate 40" },
  { readme: "npx circuitscope convert ../shared/models/stories260K/stories260K.bin --tokenizer ../shared/models/stories260K/tok512.bin --out stories260K-hf" },
  { readme: "npx circuitscope download EleutherAI/pythia-70m", covered: "needs the hub; test/hub.test.ts downloads from a loopback hub (the CLI's download, too)" },
  { readme: "npx circuitscope models" },
  { readme: "npx circuitscope train-char ../shared/data/tinyshakespeare.txt --out charlm", small: "--iters 40 --eval-every 20 --eval-iters 2 --checkpoint-every 20" },
  { readme: "npx circuitscope run charlm/model \"ROMEO:\" --generate 60" },
  { readme: "npx circuitscope attribute charlm/model \"ROMEO: I will\" --target \" \"" },
  { readme: "npx circuitscope neurons charlm/model --corpus ../shared/data/tinyshakespeare.txt --layer 0 --top 4 --out neurons", small: "--max-windows 8" },
  { readme: "npx circuitscope circuits charlm/model --out circuits" },
  { readme: "npx circuitscope sae train charlm/model --corpus ../shared/data/tinyshakespeare.txt --hook blocks.2.hook_resid_post --activation topk --k 16 --out sae", small: "--steps 20 --max-windows 16 --d-sae 64" },
  { readme: "npx circuitscope sae eval charlm/model sae --corpus ../shared/data/tinyshakespeare.txt", small: "--max-windows 4" },
  { readme: "npx circuitscope sae dashboard charlm/model sae --corpus ../shared/data/tinyshakespeare.txt --top 6 --out dash", small: "--max-windows 8 --top 2" },
  { readme: "npx circuitscope sae train charlm/model --corpus ../shared/data/tinyshakespeare.txt --hook blocks.2.hook_resid_post --ctx 64 --max-windows 2048 --d-sae 1024 --steps 2000 --batch 256 --out sae-relu", small: "--max-windows 16 --d-sae 64 --steps 20 --batch 64" },
  { readme: "npx circuitscope sae eval charlm/model sae-relu --corpus ../shared/data/tinyshakespeare.txt --ctx 64 --skip-windows 2064 --max-windows 128", small: "--max-windows 4" },
  { readme: "npx circuitscope train-lm ../shared/data/tinyshakespeare.txt --out bpe --tokenizer bpe:1024", small: "--tokenizer bpe:300 --iters 20 --eval-every 10 --eval-iters 2 --checkpoint-every 10" },
  { readme: "npx circuitscope lab superposition --out sup", small: "--steps 50 --sparsities 0,0.9" },
  { readme: "npx circuitscope lab scaling --out scaling", small: "--sizes 1x16,1x32 --tokens 4096,8192 --eval-iters 2 --bootstrap 4" },
  { readme: "npx circuitscope fit-scaling ../shared/data/chinchilla_svg_extracted_data.csv --exclude-highest 5 --out fit", small: "--bootstrap 4" },
  { readme: "npx circuitscope lab grokking --checkpoint ../shared/models/grokking-mod113 --out grok" },
  { readme: "npx circuitscope lab grokking --train --out grok-train", small: "--p 23 --d-model 32 --d-mlp 64 --epochs 20 --checkpoint-every 10" },
  { readme: "npx circuitscope lab induction --out ind --save ind-model", small: "--steps 40" },
  { readme: "npx circuitscope serve ind-model --port 8080 --json", small: "--port 0", serve: true },
  { readme: "npx circuitscope lab emergence --out em", small: "--steps 40 --sizes 16" },
  { readme: "npx circuitscope info" },
  { readme: "npm run build:native", inRepo: true },
  { readme: "npm run build:browser", inRepo: true },
  { readme: "npm run lint", inRepo: true },
  { readme: "npm run build", covered: "`npm test` runs the same two steps first (checked below)" },
  { readme: "bash wasm/build.sh", inRepo: true },
  { readme: "npm run bench", small: "--quick --only gpt2", inRepo: true },
  { readme: "npm run bench -- --json", small: "--quick --only grokking", inRepo: true },
  { readme: "npm run bench -- --only patching", small: "--quick", inRepo: true },
  { readme: "npm run bench -- --only grokking", small: "--quick", inRepo: true },
  { readme: "node dist/bench/ablation-sweep.js", inRepo: true },
  { readme: "npm run bench -- --only gpt2", covered: "the gpt2 section, run above by `npm run bench` with --quick --only gpt2" },
  { readme: "bash .ci/run", covered: "CI runs it on a fresh clone" },
  { readme: "node --test --test-name-pattern=\"attribution patching agrees\" dist/test/circuits.test.js", covered: "a file of the suite: checked to exist and to hold a test the pattern selects" },
  { readme: "node --test --test-name-pattern=\"finds a previous-token head\" dist/test/circuits.test.js", covered: "a file of the suite: checked to exist and to hold a test the pattern selects" },
  { readme: "node --test --test-name-pattern=scrubbing dist/test/circuits.test.js", covered: "a file of the suite: checked to exist and to hold a test the pattern selects" },
  { readme: "node --test dist/test/ill-conditioned.test.js dist/test/web-ill-conditioned.test.js", covered: "files of the suite: checked to exist" },
  { readme: "node --test dist/test/padding.test.js", covered: "a file of the suite: checked to exist" },
  { readme: "node --test dist/test/circuit-discovery.test.js", covered: "a file of the suite: checked to exist" },
  { readme: "node --test dist/test/fused-attention.test.js", covered: "a file of the suite: checked to exist" },
  { readme: "node --test dist/test/padding.test.js", covered: "a file of the suite: checked to exist" },
  { readme: "node --test dist/test/server.test.js dist/test/web.test.js", covered: "files of the suite: checked to exist" },
  { readme: "node --test dist/test/sae*.test.js", covered: "files of the suite: checked to exist" },
  { readme: "node --test dist/test/padding.test.js", covered: "a file of the suite: checked to exist" },
  { readme: "node --test dist/test/tl-parity.test.js", covered: "a file of the suite: checked to exist" },
  { readme: "node --test dist/test/lab-snapshots.test.js", covered: "a file of the suite: checked to exist" },
];

/** The README's commands, in order of appearance, deduplicated. */
function readmeCommands(md: string): string[] {
  const out: string[] = [];
  const fence = /```(\w*)\n([\s\S]*?)```/g;
  for (const m of md.matchAll(fence)) {
    if (m[1] !== "sh" && m[1] !== "bash") continue;
    for (const raw of m[2]!.split("\n")) {
      const line = raw.replace(/\s{2,}#.*$/, "").trim();
      if (line && !line.startsWith("#")) out.push(line);
    }
  }
  // Inline code outside fences; a span may wrap across a line break.
  const prose = md.replace(fence, "");
  for (const m of prose.matchAll(/`([^`]+)`/g)) {
    const span = m[1]!.replace(/\s*\n\s*/g, " ").trim();
    if (/^(npx |npm |node |bash )/.test(span)) out.push(span);
  }
  return [...new Set(out)];
}

const md = fs.readFileSync(path.join(repo, "README.md"), "utf8");

test("the README's commands are exactly the checked list (one spelling: npx circuitscope)", () => {
  const found = readmeCommands(md), listed = COMMANDS.map((c) => c.readme);
  assert.deepEqual(found.filter((c) => !listed.includes(c)), [], "README commands missing from COMMANDS in test/readme-commands.test.ts");
  assert.deepEqual(listed.filter((c) => !found.includes(c)), [], "COMMANDS entries the README no longer has");
  // Bare `circuitscope <command> <args>` in prose would be a second spelling; naming a command alone is fine.
  const bare = [...md.replace(/```[\s\S]*?```/g, "").matchAll(/`(circuitscope [^`]+)`/g)].map((m) => m[1]!).filter((s) => s.trim().split(/\s+/).length > 2);
  assert.deepEqual(bare, [], "write commands as `npx circuitscope …`");
  // No placeholders left in a command that is run as written.
  for (const c of found) assert.doesNotMatch(c, /<[a-z-]+>|…|path\/to\//, `placeholder in README command: ${c}`);
});

test("the README's first block is the install + demo line and the test line that .ci/run runs", () => {
  const first = /```sh\n([\s\S]*?)```/.exec(md)![1]!.split("\n").map((l) => l.replace(/\s{2,}#.*$/, "").trim()).filter(Boolean);
  assert.deepEqual(first, ["npm install && npm run demo", "npm test"]);
  const ci = fs.readFileSync(path.join(repo, ".ci/run"), "utf8");
  assert.match(ci, /readme_line 1/, ".ci/run runs the README's first line");
  assert.match(ci, /readme_line 2/, ".ci/run runs the README's second line");
});

test("npm scripts the README names do what the test substitutes for them", () => {
  const scripts = (JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  assert.match(scripts.bench!, /&& node dist\/bench\/main\.js$/);
  assert.ok(scripts.test!.startsWith(scripts.build!), "`npm test` starts with `npm run build`'s steps");
});

test("npx circuitscope resolves to this checkout's CLI from the repository", () => {
  const r = spawnSync("npx", ["--no-install", "circuitscope", "--help"], { cwd: repo, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /usage: circuitscope <command>/i);
});

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "cs-readme-"));
const work = path.join(scratch, "work");
fs.mkdirSync(work);
const shared = path.resolve(repo, "../shared");
if (fs.existsSync(shared)) fs.symlinkSync(shared, path.join(scratch, "shared"));
const cliJs = path.join(repo, "dist/src/cli/main.js");

/** The shell line the test runs for an entry: the README's, with this checkout's CLI and the small flags. */
function shellLine(e: Entry): string {
  let line = e.readme.replace(/^npx circuitscope /, `"${process.execPath}" "${cliJs}" `);
  // npm run bench = tsc, then this; the suite has compiled already.
  line = line.replace(/^npm run bench( --)?/, `"${process.execPath}" dist/bench/main.js`);
  if (e.small) line += " " + e.small;
  return line;
}

for (const e of COMMANDS) {
  if (e.covered) {
    const files = [...e.readme.matchAll(/dist\/test\/(\S+\.js)/g)].map((m) => m[1]!);
    if (files.length === 0) continue;
    test(`README: ${e.readme} (${e.covered})`, () => {
      for (const f of files) {
        const re = new RegExp("^" + f.replace(/\./g, "\\.").replace(/\*/g, ".*") + "$");
        const hits = fs.readdirSync(path.join(repo, "dist/test")).filter((n) => re.test(n));
        assert.ok(hits.length > 0, `no test file matches dist/test/${f}`);
        const pattern = /--test-name-pattern=("([^"]+)"|(\S+))/.exec(e.readme);
        if (pattern) {
          const src = fs.readFileSync(path.join(repo, "test", f.replace(/\.js$/, ".ts")), "utf8");
          assert.match(src, new RegExp(`\\b(test|it)\\([^\\n]*${pattern[2] ?? pattern[3]}`), `no test in ${f} matches the pattern`);
        }
      }
    });
    continue;
  }
  const skip = e.readme.startsWith("bash wasm/build.sh") && spawnSync("sh", ["-c", "command -v clang && command -v wasm-ld"]).status === 0
    ? "clang and wasm-ld are here: the script would regenerate the committed module in the checkout" : !fs.existsSync(shared) && /\.\.\/shared|charlm|sae/.test(e.readme) ? `no ${shared}` : false;
  test(`README: ${e.readme}`, { skip, timeout: 300_000 }, async () => {
    const cwd = e.inRepo ? repo : work, line = shellLine(e);
    if (e.serve) return checkServe(line, cwd);
    const r = spawnSync("bash", ["-c", line], { cwd, encoding: "utf8", timeout: 290_000, maxBuffer: 64 << 20 });
    if (e.readme.startsWith("bash wasm/build.sh")) {
      // Without clang the script stops at once and says what to install (the committed module stays in use).
      assert.equal(r.status, 1);
      assert.match(r.stderr, /Install clang and lld/);
      return;
    }
    assert.equal(r.status, 0, `${line}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-4000)}`);
  });
}

/** Start a `serve` line (which must end in --json), wait for it to listen, check /api/info answers, stop it with SIGTERM (exit 0). */
async function checkServe(line: string, cwd: string): Promise<void> {
  const { spawn } = await import("node:child_process");
  const child = spawn("bash", ["-c", `exec ${line}`], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  const doc = await new Promise<{ url: string }>((resolve, reject) => {
    let out = "", err = "";
    child.stdout.on("data", (d: Buffer) => { out += d; const nl = out.indexOf("\n"); if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as { url: string }); });
    child.stderr.on("data", (d: Buffer) => { err += d; });
    child.on("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  const info = await (await fetch(new URL("/api/info", doc.url))).json() as { model?: unknown };
  assert.ok(info.model, "the server answers /api/info");
  const closed = new Promise<number | null>((r) => child.on("exit", r));
  child.kill("SIGTERM");
  assert.equal(await closed, 0);
}

after(() => fs.rmSync(scratch, { recursive: true, force: true }));

test("the commands the demo prints run as printed", { timeout: 300_000 }, async () => {
  const demo = spawnSync(process.execPath, [cliJs, "demo", "--steps", "20", "--induction-steps", "30"], { cwd: work, encoding: "utf8", timeout: 120_000 });
  assert.equal(demo.status, 0, demo.stderr);
  assert.match(demo.stdout, /demo done in \d+\.\d s/);
  const printed = [...demo.stdout.matchAll(/(npx circuitscope [^)\n]+)/g)].map((m) => m[1]!.trim());
  assert.ok(printed.length > 0, "the demo points somewhere next");
  assert.ok(printed.some((c) => c.startsWith("npx circuitscope serve ")), "the demo ends with a command that opens its model in the workbench");
  for (const c of printed) {
    const line = c.replace(/^npx circuitscope /, `"${process.execPath}" "${cliJs}" `);
    // A server is started on a free port, checked to answer and stopped (later flags win in the parser).
    if (c.startsWith("npx circuitscope serve ")) { await checkServe(line + " --port 0 --json", work); continue; }
    // The same command with fewer training steps, so the check stays fast.
    const r = spawnSync("bash", ["-c", line + " --steps 30"], { cwd: work, encoding: "utf8", timeout: 240_000 });
    assert.equal(r.status, 0, `${c}: ${r.stderr.slice(-2000)}`);
  }
});
