// The JSON form of a causal-scrubbing hypothesis (see causal-scrubbing.ts), parsed with errors that
// name the offending path. The format:
//   { "name": "induction",
//     "output": [ <node>, ... ] }            the important parents of the logits
//   <node> = { "node": "embed" | "head" | "mlp", "layer": L, "head": H, "feature": <feature>,
//              "q": [<node>...], "k": [...], "v": [...]   (heads)   "in": [...]   (MLPs) }
//   <feature> = "whole"            the reference sequence itself (no resampling)
//             | "any"              any sequence (resampled at random; named parents still constrained)
//             | "token"            the token at the node's position      (= "token[pos]")
//             | "prev-token"       the token before it                   (= "token[pos-1]")
//             | "token[pos+2]" | "token[pos-3]" | "token[0]"   relative or absolute position
//             | ["token[pos-1]", "token[pos]"]                  several: all must agree
import type { Feature, Hypothesis, HypothesisNode } from "./causal-scrubbing.js";
import { HypothesisError } from "./causal-scrubbing.js";

const TOKEN = /^token\[(?:pos(?:([+-])(\d+))?|(\d+))\]$/;

function parseFeature(v: unknown, where: string): Feature {
  if (v === "whole" || v === "any") return { kind: v };
  const parts = typeof v === "string" ? [v] : Array.isArray(v) && v.length > 0 ? v : null;
  if (!parts) throw new HypothesisError(`${where}: "feature" must be "whole", "any", "token", "prev-token", "token[pos±k]", "token[i]" or a list of token features, got ${JSON.stringify(v)}`);
  const offsets: number[] = [], at: number[] = [];
  for (const p of parts) {
    const s = p === "token" ? "token[pos]" : p === "prev-token" ? "token[pos-1]" : p;
    const m = typeof s === "string" ? TOKEN.exec(s) : null;
    if (!m) throw new HypothesisError(`${where}: unknown feature ${JSON.stringify(p)} (expected "token", "prev-token", "token[pos-1]", "token[pos+2]", "token[0]", "whole" or "any")`);
    if (m[3] !== undefined) at.push(Number(m[3]));
    else offsets.push(m[1] === undefined ? 0 : (m[1] === "-" ? -1 : 1) * Number(m[2]));
  }
  return { kind: "tokens", ...(offsets.length ? { offsets } : {}), ...(at.length ? { at } : {}) };
}

const KEYS: Record<HypothesisNode["node"], readonly string[]> = {
  embed: ["node", "feature"],
  head: ["node", "layer", "head", "feature", "q", "k", "v"],
  mlp: ["node", "layer", "feature", "in"],
};

function parseNode(v: unknown, where: string): HypothesisNode {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new HypothesisError(`${where}: a node must be an object, got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  const kind = o.node;
  if (kind !== "embed" && kind !== "head" && kind !== "mlp") throw new HypothesisError(`${where}: "node" must be "embed", "head" or "mlp", got ${JSON.stringify(kind)}`);
  for (const k of Object.keys(o)) if (!KEYS[kind].includes(k)) throw new HypothesisError(`${where}: unexpected field "${k}" on a ${kind} node (allowed: ${KEYS[kind].join(", ")})`);
  if (!("feature" in o)) throw new HypothesisError(`${where}: ${kind} node has no "feature"`);
  const feature = parseFeature(o.feature, where);
  const int = (k: string) => {
    const x = o[k];
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0) throw new HypothesisError(`${where}: "${k}" must be a non-negative integer, got ${JSON.stringify(x)}`);
    return x;
  };
  const list = (k: string) => {
    const x = o[k];
    if (x === undefined) return undefined;
    if (!Array.isArray(x)) throw new HypothesisError(`${where}: "${k}" must be a list of nodes`);
    return x.map((c, i) => parseNode(c, `${where}.${k}[${i}]`));
  };
  if (kind === "embed") return { node: "embed", feature };
  if (kind === "mlp") return { node: "mlp", layer: int("layer"), feature, ...opt("in", list("in")) };
  return { node: "head", layer: int("layer"), head: int("head"), feature, ...opt("q", list("q")), ...opt("k", list("k")), ...opt("v", list("v")) };
}

const opt = <K extends string, T>(k: K, v: T | undefined) => (v === undefined ? {} : { [k]: v } as Record<K, T>);

/** A hypothesis from parsed JSON (throws HypothesisError naming the path of a malformed node). */
export function parseHypothesis(json: unknown): Hypothesis {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new HypothesisError("hypothesis: expected an object { \"name\": ..., \"output\": [nodes] }");
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== "name" && k !== "output") throw new HypothesisError(`hypothesis: unexpected field "${k}" (allowed: name, output)`);
  if (o.name !== undefined && typeof o.name !== "string") throw new HypothesisError("hypothesis: \"name\" must be a string");
  if (!Array.isArray(o.output)) throw new HypothesisError("hypothesis: \"output\" must be a list of nodes (the important parents of the logits; [] for the empty hypothesis)");
  return { ...(o.name !== undefined ? { name: o.name as string } : {}), output: o.output.map((n, i) => parseNode(n, `output[${i}]`)) };
}
