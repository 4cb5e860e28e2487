// A technique descriptor: one definition per interpretability technique, from which every surface
// is generated — the CLI command (flags, --help, --json, --out), the HTTP route (POST /api/<name>,
// validated by the same schema, listed with its JSON Schema) and the page's view. The descriptor
// holds the input schema (zod: the TypeScript type, runtime validation, CLI flags and JSON Schema
// from one definition), a run() that returns plain JSON-able data, and renderers from that data.
// Nothing here prints, reads argv or speaks HTTP.
import { z } from "zod";
import type { HookedTransformer } from "../model/transformer.js";
import type { Tokenizer } from "../model/tokens.js";

/** The model a technique runs on, as a surface loaded it. */
export interface Subject {
  model: HookedTransformer;
  /** Null for tokenizer-less snapshots: text inputs are then refused with an InputError. */
  tokenizer: Tokenizer | null;
  /** How the user named it (folder, hub id), for reports. */
  name: string;
  /** Longest prompt accepted, in tokens (a server's cap; default n_ctx). */
  maxTokens?: number;
  /** Most patched runs one sweep may do (a server's cap, so a request cannot hold it long; default no cap). */
  maxRuns?: number;
  /**
   * Which files a technique may read by path (a corpus): undefined = any (the library, the CLI); a
   * server sets it, with root null (no files: a web page must not read the machine's files through
   * it) or the one folder it was given (--data-dir).
   */
  files?: { root: string | null };
}

export interface Progress {
  done: number;
  total: number;
  /** What is being done, e.g. "patching resid_pre". */
  stage?: string;
}

export interface RunOptions {
  /** Aborting stops the run at its next progress point with an AbortError. */
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/** Bad input a schema cannot express (a prompt that tokenizes to nothing, a token that splits): names the field. */
export class InputError extends Error {
  override name = "InputError";
  constructor(readonly field: string, message: string) { super(message); }
}

/** A file a technique's result renders to: an SVG or HTML picture. */
export interface Picture {
  /** File name written under --out, e.g. "lens.svg". */
  name: string;
  content: string;
}

export type InputSchema = z.ZodObject;

export interface Technique<S extends InputSchema = InputSchema, R = unknown> {
  /** The CLI command and the route: `circuitscope <name>`, `POST /api/<name>`. */
  name: string;
  /** One line, shown in `--help` and `GET /api/techniques`. */
  summary: string;
  /** Every input field, with `.describe()` as its help text and `.default()` as its default. */
  input: S;
  /** Input fields the CLI takes as positionals after the model, in order (e.g. ["prompt"]). */
  positionals?: readonly (keyof z.input<S> & string)[];
  /** Long techniques stream progress on the API and show a bar on the CLI. */
  long?: boolean;
  /** Run on the model; returns plain data (numbers, strings, arrays; labelled axes), never pictures. */
  run(subject: Subject, input: z.output<S>, opts: RunOptions): R | Promise<R>;
  /** The CLI's human-readable result (stdout without --json). */
  text(result: R, input: z.output<S>): string;
  /** Pictures of the result: written under --out, shown by the page. */
  pictures?(result: R, input: z.output<S>): Picture[];
}

/** Typed identity: keeps S and R inferred at the definition site. */
export function defineTechnique<S extends InputSchema, R>(t: Technique<S, R>): Technique<S, R> {
  return t;
}

/** A schema issue as one sentence naming the field (surfaces prefix it with --flag or "field"). */
export function issueMessage(issue: z.core.$ZodIssue): { field: string; message: string } {
  return { field: issue.path.map(String).join("."), message: issue.message };
}

/** Validate raw input (JSON body or parsed flags) against a technique's schema; InputError names the first bad field. */
export function parseInput<S extends InputSchema>(t: Technique<S, unknown>, raw: unknown): z.output<S> {
  const r = t.input.safeParse(raw);
  if (!r.success) {
    const { field, message } = issueMessage(r.error.issues[0]!);
    throw new InputError(field, message);
  }
  return r.data;
}

/** Validate and run, keeping the parsed input (with its defaults) for the renderers: what the CLI and the API call. */
export async function runWithInput<S extends InputSchema, R>(t: Technique<S, R>, subject: Subject, raw: unknown, opts: RunOptions = {}): Promise<{ result: R; input: z.output<S> }> {
  const input = parseInput(t, raw);
  opts.signal?.throwIfAborted();
  return { result: await t.run(subject, input, opts), input };
}

/** Validate and run: what the library calls. */
export async function runTechnique<S extends InputSchema, R>(t: Technique<S, R>, subject: Subject, raw: unknown, opts: RunOptions = {}): Promise<R> {
  return (await runWithInput(t, subject, raw, opts)).result;
}

/** The input's JSON Schema (input side: fields with defaults are optional). */
export function inputJsonSchema(t: Technique): unknown {
  return z.toJSONSchema(t.input, { io: "input" });
}

const yieldNow = (): Promise<void> => new Promise((r) => (globalThis.setImmediate ?? setTimeout)(r));

/**
 * Reports progress and honours cancellation: long loops call tick() once per unit of work, or
 * `await step()`, which also yields to the event loop every ~50 ms so a server can send the
 * progress and notice a closed request while the (synchronous) engine works.
 */
export function progressOf(opts: RunOptions, total: number, stage?: string): { tick(n?: number): void; step(n?: number): Promise<void> } {
  let done = 0, last = Date.now();
  const tick = (n = 1) => {
    opts.signal?.throwIfAborted();
    done += n;
    opts.onProgress?.({ done, total, ...(stage !== undefined ? { stage } : {}) });
  };
  return {
    tick,
    async step(n = 1) {
      tick(n);
      if (Date.now() - last < 50) return;
      await yieldNow();
      last = Date.now();
      opts.signal?.throwIfAborted();
    },
  };
}
