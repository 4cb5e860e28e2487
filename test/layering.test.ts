// The layering of src/, from the import graph (issue #11 item 4): every import of every file under
// src/ — static `import … from`, `export … from`, side-effect `import "…"` and dynamic `import("…")`,
// read by TypeScript's own pre-processor so comments and strings are not mistaken for imports — is
// mapped to the top folders it joins, and each edge must be allowed by the matrix below. The README's
// "## Layout" table must list every top folder, in an order where each folder's allowed imports lie
// above it.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { repo } from "./cli-helpers.js";

const SRC = path.join(repo, "src");
/** The package roots: src/index.ts, src/browser.ts and the subpath entries src/entries/*.ts (circuitscope/tensor, …). */
const ROOT = "(root)";
const ROOT_FOLDERS = ["entries"];

const below = (...f: string[]) => new Set(f);
const CORE = ["model", "nn", "tensor", "backend"];
const ANALYSIS = ["io", ...CORE];
const TRAIN = [...ANALYSIS, "plot"];
const LABS = ["analysis", "train", ...TRAIN];
const TECHNIQUES = ["sae", "labs", ...LABS];
const SERVER = ["techniques", ...TECHNIQUES];

/** Which top folders each top folder may import from (besides itself). */
const ALLOWED: Record<string, Set<string>> = {
  backend: below(),
  plot: below(),
  tensor: below("backend"),
  nn: below("tensor", "backend"),
  model: below(...CORE.slice(1)),
  io: below(...CORE),
  analysis: below(...ANALYSIS), // not plot: analysis returns data, techniques draw it
  train: below(...TRAIN),
  labs: below(...LABS),
  sae: below(...LABS),
  techniques: below(...TECHNIQUES),
  server: below(...SERVER, "web"), // web: the page it serves
  web: below("server", "techniques", "plot"), // server and techniques for their types
  cli: below(...SERVER, "server"), // everything but web
  [ROOT]: below(...TECHNIQUES, "techniques"), // everything but cli, server, web
};

/**
 * Edges that break the matrix today, each to be removed by the branch named — and the test fails
 * if one of them is no longer there, so the entry goes with the fix.
 */
const KNOWN: Record<string, string> = {};

/** Every .ts file under a folder. */
function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p) : /\.ts$/.test(e.name) && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

/** The specifiers a source text imports (static, re-export, side-effect and dynamic). */
export function importsOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

/** The top folder under src/ of a path in it (ROOT for src/index.ts, src/browser.ts), or null outside src/. */
function topOf(file: string): string | null {
  const rel = path.relative(SRC, file);
  if (rel.startsWith("..") || path.isAbsolute(rel)) return null;
  const parts = rel.split(path.sep);
  return parts.length === 1 || ROOT_FOLDERS.includes(parts[0]!) ? ROOT : parts[0]!;
}

interface Edge { file: string; spec: string; from: string; to: string }

/** The cross-folder edges of src/: relative imports only (packages and node: builtins are not layers). */
function edges(): Edge[] {
  return files(SRC).flatMap((file) => importsOf(fs.readFileSync(file, "utf8")).filter((s) => s.startsWith(".")).map((spec) => {
    const from = topOf(file)!, to = topOf(path.resolve(path.dirname(file), spec)) ?? `outside src/ (${spec})`;
    return { file: path.relative(repo, file), spec, from, to };
  })).filter((e) => e.from !== e.to);
}

/** The edges the matrix does not allow, as "file → folder" (spec). */
function violations(all: Edge[]): { key: string; spec: string }[] {
  return all.filter((e) => !(ALLOWED[e.from]?.has(e.to) ?? false)).map((e) => ({ key: `${e.file} → ${e.to}`, spec: e.spec }));
}

test("the import reader sees every kind of import and nothing in comments or strings", () => {
  const text = [
    `import a from "./a.js";`, `import type { B } from "../b.js";`, `export { c } from "./c.js";`, `export * from "./d.js";`,
    `import "./e.js";`, `const f = await import("./f.js");`, `import {\n  g,\n  h,\n} from "./g.js";`,
    `// import x from "./comment.js"`, `/* import("./block.js") */`, `const s = 'import("./string.js")';`,
  ].join("\n");
  assert.deepEqual(importsOf(text), ["./a.js", "../b.js", "./c.js", "./d.js", "./e.js", "./f.js", "./g.js"]);
});

test("the matrix check flags an edge it does not allow", () => {
  const bad: Edge[] = [
    { file: "src/analysis/x.ts", spec: "../plot/svg.js", from: "analysis", to: "plot" },
    { file: "src/tensor/x.ts", spec: "../model/y.js", from: "tensor", to: "model" },
    { file: "src/model/x.ts", spec: "../tensor/y.js", from: "model", to: "tensor" },
  ];
  assert.deepEqual(violations(bad).map((v) => v.key), ["src/analysis/x.ts → plot", "src/tensor/x.ts → model"]);
});

test("every top folder of src/ is in the matrix", () => {
  const tops = fs.readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory() && !ROOT_FOLDERS.includes(e.name)).map((e) => e.name).sort();
  assert.deepEqual(tops, Object.keys(ALLOWED).filter((k) => k !== ROOT).sort());
  const roots = fs.readdirSync(SRC).filter((f) => f.endsWith(".ts")).sort();
  assert.deepEqual(roots, ["browser.ts", "index.ts"], "the package roots");
});

test("src/ imports follow the layering matrix (analysis imports nothing from plot)", () => {
  const all = edges();
  assert.ok(all.length > 100, `${all.length} cross-folder imports read`);
  const found = violations(all);
  const unknown = found.filter((v) => !(v.key in KNOWN));
  assert.deepEqual(unknown.map((v) => `${v.key} (${v.spec})`), [], "imports the layering does not allow");
  const gone = Object.keys(KNOWN).filter((k) => !found.some((v) => v.key === k));
  assert.deepEqual(gone, [], "known exceptions that are fixed: delete their KNOWN entry");
});

/** The value (not type-only) imports of a source text: specifiers of imports and re-exports that bring a value at run time. */
export function valueImportsOf(text: string): string[] {
  const sf = ts.createSourceFile("x.ts", text, ts.ScriptTarget.Latest, false);
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const c = n.importClause, named = c?.namedBindings;
      const typeOnly = c !== undefined && (c.isTypeOnly || (!c.name && named !== undefined && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly)));
      if (!typeOnly) out.push(n.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier) && !n.isTypeOnly) out.push(n.moduleSpecifier.text);
    else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) out.push(n.arguments[0].text);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

test("the page takes only types from server/ and techniques/ (the bundle carries no server code)", () => {
  assert.deepEqual(valueImportsOf(`import type { A } from "./a.js";\nimport { type B, type C } from "./b.js";\nimport { d, type E } from "./d.js";\nexport type { F } from "./f.js";\nconst g = import("./g.js");`), ["./d.js", "./g.js"]);
  const bad = files(path.join(SRC, "web")).flatMap((file) => valueImportsOf(fs.readFileSync(file, "utf8")).filter((spec) => spec.startsWith("."))
    .filter((spec) => ["server", "techniques"].includes(topOf(path.resolve(path.dirname(file), spec)) ?? "")).map((spec) => `${path.relative(repo, file)}: ${spec}`));
  assert.deepEqual(bad, []);
});

test("the README's layout table lists every top folder in an order where each imports only from those above it", () => {
  const readme = fs.readFileSync(path.join(repo, "README.md"), "utf8");
  const section = /^## Layout[^\n]*\n([\s\S]*?)(?=^## )/m.exec(readme);
  assert.ok(section, "README has a ## Layout section");
  assert.match(section[0], /each layer imports only from those above it/);
  // The folders of each row, in table order (a row may name several: `src/labs/`, `src/sae/`).
  const order: string[] = [];
  for (const line of section[1]!.split("\n").filter((l) => l.startsWith("| `src/"))) {
    const first = line.split("|")[1]!;
    for (const m of first.matchAll(/`src\/([a-z]+)\/`/g)) order.push(ROOT_FOLDERS.includes(m[1]!) ? ROOT : m[1]!);
    if (/`src\/(index|browser)\.ts`/.test(first)) order.push(ROOT);
  }
  const tops = Object.keys(ALLOWED);
  assert.deepEqual([...new Set(order)].sort(), [...tops].sort(), "the table names every top folder and the package roots");
  const misplaced = tops.flatMap((t) => [...ALLOWED[t]!].filter((d) => order.indexOf(d) > order.indexOf(t)).map((d) => `${t} may import ${d}, listed below it`));
  // server and web need each other (the page it serves; the route types the page uses): the one cycle, said in the README.
  const pair: readonly string[] = ["web may import server, listed below it", "server may import web, listed below it"];
  const cycle = misplaced.filter((m) => pair.includes(m));
  assert.deepEqual(misplaced.filter((m) => !cycle.includes(m)), []);
  if (cycle.length) assert.match(section[0], /web[^\n|]*types[^\n|]*server|server[^\n|]*web[^\n|]*types/i, "the README says why web and server import each other");
});
