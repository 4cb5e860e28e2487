// Shared by the end-to-end CLI tests: run the built CLI, and check that a picture is a well-formed,
// labelled SVG (balanced tags) and that a failing run exited 2 with a JSON error document.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// These files run as dist/test/*.js: the repository is two folders up, shared/ beside it.
const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
export const tinyGpt2 = path.resolve(repo, "../shared/models/tiny-gpt2");

export function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repo, "dist/src/cli/main.js"), ...args], { cwd: repo, encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const VOID = new Set(["meta", "br", "hr", "img", "input", "link"]);
/** Tags balance (a stack over open/close tags; self-closing and HTML void tags excepted). */
export function assertBalanced(text: string, what: string): void {
  const stack: string[] = [];
  for (const m of text.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, self] = m;
    if (self || VOID.has(name!.toLowerCase())) continue;
    if (!closing) { stack.push(name!); continue; }
    const open = stack.pop();
    assert.equal(open, name, `${what}: </${name}> closes <${open}> at ${m.index}`);
  }
  assert.deepEqual(stack, [], `${what}: unclosed ${stack.join(", ")}`);
}

/** An SVG file: one <svg> document, balanced, containing every label (as escaped text). */
export function assertSvg(file: string, labels: readonly string[]): string {
  const s = fs.readFileSync(file, "utf8");
  assert.ok(s.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""), `${file} starts with <svg`);
  assert.ok(s.trimEnd().endsWith("</svg>"), `${file} ends with </svg>`);
  assertBalanced(s, file);
  for (const l of labels) assert.ok(s.includes(`>${l}<`) || s.includes(l), `${file} shows ${JSON.stringify(l)}`);
  return s;
}

/** The error message of a run that must have failed with exit code 2 (a usage error). */
export const errorOf = (r: { code: number | null; stdout: string }) => { assert.equal(r.code, 2, r.stdout); return (JSON.parse(r.stdout) as { error: { message: string } }).error.message; };
