// Opening the model a technique runs on, as every surface does it: a snapshot folder loaded with
// its tokenizer (when it has one), named as the user named it.
import { loadPretrained } from "../io/snapshot.js";
import type { Subject } from "./technique.js";

export function loadSubject(path: string): Subject {
  const { model, tokenizer } = loadPretrained(path);
  return { model, tokenizer: tokenizer ?? null, name: path };
}
