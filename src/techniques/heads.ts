// Choosing attention heads: "all", or a comma-separated list of L.H (e.g. "1.0,1.1"), checked
// against the model so a head that does not exist is an InputError naming the field.
import { z } from "zod";
import { InputError } from "./technique.js";

export interface HeadRef { layer: number; head: number }

export const headsField = (what = "heads") => z.string().min(1, `${what} is empty`).default("all").describe(`${what}: comma-separated L.H (e.g. 1.0,1.1), or all`);

/** The heads a heads field names, in the order given. */
export function parseHeads(field: string, text: string, nLayers: number, nHeads: number): HeadRef[] {
  if (text.trim() === "all") return Array.from({ length: nLayers * nHeads }, (_, i) => ({ layer: Math.floor(i / nHeads), head: i % nHeads }));
  return text.split(",").map((part) => {
    const m = /^(\d+)\.(\d+)$/.exec(part.trim());
    if (!m) throw new InputError(field, `"${part}" is not a head L.H (e.g. 1.0) or "all"`);
    const layer = Number(m[1]), head = Number(m[2]);
    if (layer >= nLayers || head >= nHeads) throw new InputError(field, `${part.trim()} does not exist; the model has ${nLayers} layers × ${nHeads} heads`);
    return { layer, head };
  });
}
