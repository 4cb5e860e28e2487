// einsum over one or more operands ("bij,bjk->bik", "...d,dv->...v"), built from sum, permute,
// reshape and one batched matmul per pair, so it is as fast as matmul and differentiable for free.
import { fmt, ShapeError } from "../shape.js";
import { Tensor } from "../tensor.js";
import { matmul } from "./linalg.js";
import { permute, reshape } from "./movement.js";
import { sum } from "./reduce.js";

interface Term { t: Tensor; idx: string[] }

function parse(spec: string, xs: Tensor[]): { terms: Term[]; out: string[] } {
  const [lhs, rhsRaw] = spec.replace(/\s+/g, "").split("->") as [string, string | undefined];
  const parts = lhs.split(",");
  if (parts.length !== xs.length) throw new ShapeError(`einsum: "${spec}" names ${parts.length} operands, got ${xs.length}`);
  const letters = new Set(spec.replace(/[^a-zA-Z]/g, ""));
  const spare = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".split("").filter((c) => !letters.has(c));
  // Ellipsis dims align from the right across operands, so size the ellipsis by the widest one first.
  let ell: string[] | null = null;
  for (let i = 0; i < parts.length; i++) {
    const n = parts[i]!.includes("...") ? xs[i]!.ndim - (parts[i]!.length - 3) : -1;
    if (n >= 0 && (!ell || ell.length < n)) ell = spare.slice(0, n);
  }
  const terms = parts.map((p, i) => {
    const t = xs[i]!;
    let idx = p.split("");
    if (p.includes("...")) {
      const [pre, post] = p.split("...") as [string, string];
      const n = t.ndim - pre.length - post.length;
      if (n < 0) throw new ShapeError(`einsum: operand ${i} ${fmt(t.shape)} has fewer dims than "${p}"`);
      idx = [...pre.split(""), ...ell!.slice(ell!.length - n), ...post.split("")].filter((c) => c !== "");
    }
    if (idx.length !== t.ndim) throw new ShapeError(`einsum: operand ${i} has shape ${fmt(t.shape)} but "${p}" names ${idx.length} dims`);
    if (new Set(idx).size !== idx.length) throw new ShapeError(`einsum: repeated index within "${p}" (diagonals) is not supported`);
    return { t, idx };
  });
  let out: string[];
  if (rhsRaw !== undefined) {
    out = rhsRaw.includes("...") ? rhsRaw.replace("...", (ell ?? []).join("")).split("").filter((c) => c !== "") : rhsRaw.split("").filter((c) => c !== "");
  } else {
    // Implicit output: ellipsis dims, then indices that appear once, alphabetically.
    const count = new Map<string, number>();
    for (const t of terms) for (const c of t.idx) count.set(c, (count.get(c) ?? 0) + 1);
    out = [...(ell ?? []), ...[...count].filter(([c, n]) => n === 1 && !(ell ?? []).includes(c)).map(([c]) => c).sort()];
  }
  const sizes = new Map<string, number>();
  for (const { t, idx } of terms) idx.forEach((c, d) => {
    const s = sizes.get(c);
    if (s !== undefined && s !== t.shape[d]) throw new ShapeError(`einsum: index "${c}" has size ${s} in one operand and ${t.shape[d]} in another`);
    sizes.set(c, t.shape[d]!);
  });
  for (const c of out) if (!sizes.has(c)) throw new ShapeError(`einsum: output index "${c}" appears in no operand`);
  return { terms, out };
}

/** Sum out indices of a term that nothing else needs. */
function sumUnneeded(term: Term, needed: Set<string>): Term {
  const axes = term.idx.map((c, i) => (needed.has(c) ? -1 : i)).filter((i) => i >= 0);
  if (axes.length === 0) return term;
  return { t: sum(term.t, axes), idx: term.idx.filter((c) => needed.has(c)) };
}

function contractPair(A: Term, B: Term, keep: Set<string>): Term {
  const batch = A.idx.filter((c) => B.idx.includes(c) && keep.has(c));
  const contr = A.idx.filter((c) => B.idx.includes(c) && !keep.has(c));
  const left = A.idx.filter((c) => !B.idx.includes(c));
  const right = B.idx.filter((c) => !A.idx.includes(c));
  const size = (T: Term, cs: string[]) => cs.reduce((s, c) => s * T.t.shape[T.idx.indexOf(c)]!, 1);
  const pa = permute(A.t, [...batch, ...left, ...contr].map((c) => A.idx.indexOf(c)));
  const pb = permute(B.t, [...batch, ...contr, ...right].map((c) => B.idx.indexOf(c)));
  const nb = size(A, batch), M = size(A, left), K = size(A, contr), N = size(B, right);
  const prod = matmul(reshape(pa, [nb, M, K]), reshape(pb, [nb, K, N])); // [batch, left, right]
  const dims = [...batch.map((c) => A.t.shape[A.idx.indexOf(c)]!), ...left.map((c) => A.t.shape[A.idx.indexOf(c)]!), ...right.map((c) => B.t.shape[B.idx.indexOf(c)]!)];
  return { t: reshape(prod, dims), idx: [...batch, ...left, ...right] };
}

export function einsum(spec: string, ...xs: Tensor[]): Tensor {
  const { terms, out } = parse(spec, xs);
  const neededBy = (skip: number, acc: Term[]) => {
    const s = new Set(out);
    acc.forEach((t, i) => { if (i !== skip) t.idx.forEach((c) => s.add(c)); });
    return s;
  };
  let rest = terms.slice();
  rest = rest.map((t, i) => sumUnneeded(t, neededBy(i, rest)));
  let acc = rest[0]!;
  for (let i = 1; i < rest.length; i++) {
    const later = new Set(out);
    for (let j = i + 1; j < rest.length; j++) rest[j]!.idx.forEach((c) => later.add(c));
    acc = contractPair(acc, rest[i]!, later);
  }
  acc = sumUnneeded(acc, new Set(out));
  return out.length === acc.idx.length && out.every((c, i) => acc.idx[i] === c) ? acc.t : permute(acc.t, out.map((c) => acc.idx.indexOf(c)));
}
