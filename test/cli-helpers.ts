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
/** The `skip` option of tests that need the tiny-gpt2 snapshot: false, or why they are skipped. */
export const noTinyGpt2: string | false = fs.existsSync(tinyGpt2) ? false : `no snapshot at ${tinyGpt2}`;

/** How to run the CLI: defaults are the repository as working directory, this process's env, 120 s. */
export interface CliOptions { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number }
export interface CliResult { code: number | null; stdout: string; stderr: string }

/** Runs the built CLI with these arguments; options, when given, come first. */
export function cli(...args: string[]): CliResult;
export function cli(options: CliOptions, ...args: string[]): CliResult;
export function cli(...all: (string | CliOptions)[]): CliResult {
  const options = typeof all[0] === "object" ? all.shift() as CliOptions : {};
  const r = spawnSync(process.execPath, [path.join(repo, "dist/src/cli/main.js"), ...all as string[]], { cwd: repo, timeout: 120_000, ...options, encoding: "utf8" });
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
