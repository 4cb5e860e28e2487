// A text corpus named by a file path (the CLI's --corpus, the API's "corpus" field: a path on the
// machine that runs the technique), and cutting it into token windows without tokenizing all of it.
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { InputError, type Subject } from "./technique.js";

export const corpusField = (what = "a text file, read line by line and cut into windows") => z.string().min(1, "the corpus path is empty").describe(what);

/**
 * The text of a corpus file; InputError naming the field unless the path is a regular, readable file
 * the subject may read (inside the server's --data-dir, after resolving links, when a server asks).
 */
export function readCorpus(field: string, file: string, s?: Pick<Subject, "files">): string {
  const allowed = s?.files;
  if (allowed && allowed.root === null) throw new InputError(field, "this server reads no files by path (start it with --data-dir DIR to allow corpora inside DIR)");
  let st: fs.Stats;
  try { st = fs.statSync(file); } catch { throw new InputError(field, `no file at ${file}`); }
  if (!st.isFile()) throw new InputError(field, `${file} is not a regular file`);
  if (allowed && allowed.root !== null) {
    const root = fs.realpathSync(allowed.root), real = fs.realpathSync(file);
    if (path.relative(root, real).startsWith("..") || path.isAbsolute(path.relative(root, real))) throw new InputError(field, `${file} is outside this server's data folder ${allowed.root}`);
  }
  try { return fs.readFileSync(file, "utf8"); } catch (e) { throw new InputError(field, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
}

/** What corpusWindows needs from a tokenizer. */
interface Encoder { encode(text: string, opts?: { addSpecialTokens?: boolean }): number[] }

/**
 * Windows of `ctx` corpus tokens (plus `bos` first if given), at most maxWindows of them, the text
 * encoded line by line (each line with its newline) so only what is used gets tokenized.
 */
export function corpusWindows(tokenizer: Encoder, text: string, ctx: number, maxWindows: number, bos?: number): number[][] {
  const want = ctx * maxWindows, ids: number[] = [];
  for (let at = 0; at < text.length && ids.length < want;) {
    const nl = text.indexOf("\n", at), end = nl < 0 ? text.length : nl + 1;
    ids.push(...tokenizer.encode(text.slice(at, end), { addSpecialTokens: false }));
    at = end;
  }
  const n = Math.min(maxWindows, Math.floor(ids.length / ctx));
  return Array.from({ length: n }, (_, w) => [...(bos === undefined ? [] : [bos]), ...ids.slice(w * ctx, (w + 1) * ctx)]);
}
