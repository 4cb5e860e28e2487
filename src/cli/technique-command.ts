// A technique descriptor as a CLI command, generated: its schema's fields become commander options
// (or positionals), --help is commander's from the fields' descriptions and defaults, --json prints
// the result as one JSON document, --out writes the result's pictures plus <name>.json, and a bad
// value is a usage error naming its flag. Nothing here is written per technique.
import fs from "node:fs";
import { Command as Cmd, Option } from "commander";
import { z } from "zod";
import { InputError, runWithInput, type Subject, type Technique } from "../techniques/technique.js";
import { UsageError } from "./args.js";
import { progress, type Output } from "./io.js";
import { writeOutputFiles } from "./outputs.js";

/** The kind of a schema field, seen through optional/default wrappers. */
interface FieldInfo { kind: "string" | "number" | "boolean" | "enum" | "numbers" | "strings" | "json" | "textOrIds" | "textOrId"; def: unknown; optional: boolean; values?: readonly string[]; description?: string; text?: boolean }

export function fieldInfo(schema: z.ZodType): FieldInfo {
  let s = schema as z.ZodType & { def: { type: string; innerType?: z.ZodType; defaultValue?: unknown; element?: z.ZodType; entries?: Record<string, string>; options?: readonly z.ZodType[] } };
  let def: unknown, optional = false;
  let description = s.description;
  for (;;) {
    if (s.def.type === "default") { def = s.def.defaultValue; optional = true; s = s.def.innerType as typeof s; description ??= s.description; continue; }
    if (s.def.type === "optional") { optional = true; s = s.def.innerType as typeof s; description ??= s.description; continue; }
    break;
  }
  const t = s.def.type;
  const base = { def, optional, ...(description !== undefined ? { description } : {}) };
  if (t === "string") return { kind: "string", ...base };
  if (t === "number") return { kind: "number", ...base };
  if (t === "boolean") return { kind: "boolean", ...base };
  if (t === "enum") return { kind: "enum", values: Object.values(s.def.entries!), ...base };
  if (t === "array") {
    const el = (s.def.element as typeof s).def.type;
    return { kind: el === "number" ? "numbers" : el === "string" ? "strings" : "json", ...base };
  }
  // A prompt or a token: text, or token ids written as a JSON list ("[1,403,407]"; one token: "[1234]").
  if (t === "union") {
    const opts = s.def.options!.map((o) => (o as typeof s).def);
    const ids = opts.some((o) => o.type === "array" && (o.element as typeof s).def.type === "number"), id = opts.some((o) => o.type === "number");
    if (opts.length === 2 && opts.some((o) => o.type === "string") && (ids || id)) return { kind: ids ? "textOrIds" : "textOrId", ...base };
  }
  // A union with a string (e.g. token lists or text): a file that is not .json/.jsonl is passed as its text.
  if (t === "union" && s.def.options!.some((o) => (o as typeof s).def.type === "string")) return { kind: "json", text: true, ...base };
  return { kind: "json", ...base };
}

export const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A flag's text as the field's type; UsageError naming the flag when it is not one. */
function convert(flag: string, info: FieldInfo, raw: unknown): unknown {
  if (typeof raw !== "string") return raw; // booleans from commander
  const num = (x: string) => {
    const n = Number(x);
    if (x.trim() === "" || !Number.isFinite(n)) throw new UsageError(`${flag} must be a number, got "${x}"`);
    return n;
  };
  switch (info.kind) {
    case "number": return num(raw);
    case "numbers": return raw.split(",").map(num);
    case "strings": return raw.split(",");
    case "textOrIds": return /^\s*\[[\d\s,]*\]\s*$/.test(raw) ? jsonValue(flag, raw) : raw;
    case "textOrId": return /^\s*\[\s*\d+\s*\]\s*$/.test(raw) ? (JSON.parse(raw) as number[])[0] : raw;
    case "json": return info.text && !/\.jsonl?$/.test(raw) && !/^\s*[[{]/.test(raw) ? textFile(flag, raw) : jsonValue(flag, raw);
    default: return raw;
  }
}

function textFile(flag: string, file: string): string {
  try { return fs.readFileSync(file, "utf8"); } catch (e) { throw new UsageError(`${flag}: cannot read ${file}: ${(e as Error).message}`); }
}

/** Where each element of a JSONL-file value came from, so schema errors can name file:line. */
const sources = new WeakMap<object, { file: string; lines: number[] }>();

/** A structured value on the command line: inline JSON, or a JSON / JSONL file (one value a line) naming file:line on errors. */
function jsonValue(flag: string, raw: string): unknown {
  const t = raw.trimStart();
  if (t.startsWith("[") || t.startsWith("{")) {
    try { return JSON.parse(raw); } catch (e) { throw new UsageError(`${flag}: not JSON (${(e as Error).message})`); }
  }
  let text: string;
  try { text = fs.readFileSync(raw, "utf8"); } catch (e) { throw new UsageError(`${flag}: cannot read ${raw}: ${(e as Error).message}`); }
  if (!raw.endsWith(".jsonl")) {
    try { return JSON.parse(text); } catch (e) { throw new UsageError(`${flag}: ${raw} is not JSON (${(e as Error).message})`); }
  }
  const out: unknown[] = [], lines: number[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try { out.push(JSON.parse(line)); lines.push(i + 1); } catch (e) { throw new UsageError(`${flag}: ${raw}:${i + 1}: not JSON (${(e as Error).message})`); }
  });
  if (out.length === 0) throw new UsageError(`${flag}: ${raw} has no lines`);
  sources.set(out, { file: raw, lines });
  return out;
}

/** How the CLI names a field path: --flag for options, <name> for positionals, file:line inside a JSONL file. */
function flagName(t: Technique, path: string, raw: Record<string, unknown>): string {
  const [field, index, ...rest] = path.split(".");
  const flag = t.positionals?.includes(field!) ? `<${kebab(field!)}>` : `--${kebab(field!)}`;
  const v = raw[field!], src = typeof v === "object" && v !== null ? sources.get(v) : undefined;
  if (src && index !== undefined && src.lines[Number(index)] !== undefined) return `${flag}: ${src.file}:${src.lines[Number(index)]}${rest.length ? `: ${rest.join(".")}` : ""}`;
  return index === undefined ? flag : `${flag} (${path})`;
}

/** The commander command of a technique; `load` opens the model argument, `out` is chosen by --json. */
export function techniqueCommand(t: Technique, load: (model: string) => Subject | Promise<Subject>, makeOut: (json: boolean) => Output, onDone: (code: number) => void): Cmd {
  const cmd = new Cmd(t.name).summary(t.summary).description(t.summary);
  cmd.argument("<model>", "snapshot folder (config.json, model.safetensors, tokenizer.json)");
  const shape = t.input.shape as Record<string, z.ZodType>;
  const positionals = t.positionals ?? [];
  for (const p of positionals) cmd.argument(`<${kebab(p)}>`, fieldInfo(shape[p]!).description ?? p);
  for (const [k, schema] of Object.entries(shape)) {
    if (positionals.includes(k)) continue;
    const info = fieldInfo(schema), name = kebab(k);
    let opt: Option;
    if (info.kind === "boolean") opt = info.def === true ? new Option(`--no-${name}`, `turn off: ${info.description ?? name}`) : new Option(`--${name}`, info.description);
    else {
      opt = new Option(`--${name} <${info.kind === "numbers" ? "list" : "value"}>`, info.description ?? "");
      if (info.values) opt.choices(info.values);
      if (info.def !== undefined) opt.default(info.def);
    }
    cmd.addOption(opt);
  }
  cmd.option("--json", "print one JSON document on stdout (progress stays on stderr)");
  if (t.pictures) cmd.option("--out <dir>", `write the pictures and ${t.name}.json there`);
  cmd.action(async (...args: unknown[]) => {
    const opts = args[positionals.length + 1] as Record<string, unknown>;
    const out = makeOut(opts.json === true);
    const raw: Record<string, unknown> = {};
    positionals.forEach((p, i) => { raw[p] = convert(`<${kebab(p)}>`, fieldInfo(shape[p]!), args[i + 1]); });
    for (const [k, schema] of Object.entries(shape)) {
      if (positionals.includes(k)) continue;
      const v = opts[k];
      if (v !== undefined) raw[k] = convert(`--${kebab(k)}`, fieldInfo(schema), v);
    }
    const subject = await load(args[0] as string);
    const ac = new AbortController();
    const stop = () => ac.abort(new Error("interrupted"));
    process.once("SIGINT", stop);
    const bar = t.long ? progressBar(t.name) : null;
    try {
      const { result, input } = await runWithInput(t, subject, raw, { signal: ac.signal, ...(bar ? { onProgress: bar.onProgress } : {}) }).catch((e: unknown) => {
        if (e instanceof InputError) throw new UsageError(`${flagName(t, e.field, raw)}: ${e.message}`);
        throw e;
      });
      bar?.done();
      const doc = { model: subject.name, ...(result as object), files: [] as string[] };
      const outDir = opts.out as string | undefined;
      if (outDir !== undefined && t.pictures) writeOutputFiles(outDir, t.pictures(result, input).map((p) => [p.name, p.content] as const), t.name, doc);
      out.result(doc, () => [t.text(result, input), ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : [])].join("\n"));
      onDone(0);
    } finally {
      process.off("SIGINT", stop);
    }
  });
  return cmd;
}

function progressBar(label: string): { onProgress: (p: { done: number; total: number }) => void; done(): void } {
  let bar: ReturnType<typeof progress> | null = null, seen = 0;
  return {
    onProgress(p) {
      bar ??= progress(label, p.total);
      bar.tick(p.done - seen);
      seen = p.done;
    },
    done() { bar?.done(); },
  };
}
