// FactoredMatrix: a (batch of) low-rank matrix AB kept as its factors A [..., ldim, mdim] and
// B [..., mdim, rdim], after TransformerLens's FactoredMatrix.py. A head's QK circuit W_Q W_Kᵀ is
// d_model × d_model but has rank d_head, so its norm, SVD and eigenvalues come from mdim × mdim
// matrices without ever forming AB. The small dense linear algebra (Householder QR, one-sided Jacobi
// SVD, complex shifted-QR eigenvalues) runs in float64 on JS arrays and is meant for matrices of at
// most a few hundred rows; it is not a general LAPACK.
import { matmul } from "../tensor/ops/linalg.js";
import { expand } from "../tensor/ops/movement.js";
import { broadcastShapes, fmt, numel, ShapeError } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";

/** A dense row-major float64 matrix. */
export interface Mat { rows: number; cols: number; data: Float64Array }

export interface SVD {
  /** [..., ldim, r] with orthonormal columns, r = min(ldim, mdim, rdim) when factored. */
  U: Tensor;
  /** [..., r] singular values, descending. */
  S: Tensor;
  /** [..., rdim, r]: AB = U diag(S) Vᵀ. */
  V: Tensor;
}

export class FactoredMatrix {
  /** [..., ldim, mdim], batch dims broadcast against B's. */
  readonly A: Tensor;
  /** [..., mdim, rdim]. */
  readonly B: Tensor;

  constructor(A: Tensor, B: Tensor) {
    if (A.ndim < 2 || B.ndim < 2) throw new ShapeError(`FactoredMatrix: A and B need at least 2 dims, got ${fmt(A.shape)} and ${fmt(B.shape)}`);
    if (A.shape[A.ndim - 1] !== B.shape[B.ndim - 2]) throw new ShapeError(`FactoredMatrix: A ${fmt(A.shape)} and B ${fmt(B.shape)} do not chain (A's last dim must equal B's second-to-last)`);
    const batch = broadcastShapes("FactoredMatrix", A.shape.slice(0, -2), B.shape.slice(0, -2));
    this.A = expand(A, [...batch, ...A.shape.slice(-2)]);
    this.B = expand(B, [...batch, ...B.shape.slice(-2)]);
  }

  get batchShape(): number[] { return this.A.shape.slice(0, -2); }
  get ldim(): number { return this.A.shape[this.A.ndim - 2]!; }
  get mdim(): number { return this.A.shape[this.A.ndim - 1]!; }
  get rdim(): number { return this.B.shape[this.B.ndim - 1]!; }
  /** [..., ldim, rdim], the shape of AB. */
  get shape(): number[] { return [...this.batchShape, this.ldim, this.rdim]; }
  get ndim(): number { return this.A.ndim; }

  /** The product, materialised: [..., ldim, rdim]. */
  get AB(): Tensor { return matmul(this.A, this.B); }
  /** The other-order product [..., mdim, mdim] (needs ldim = rdim); its nonzero eigenvalues are AB's. */
  get BA(): Tensor {
    if (this.ldim !== this.rdim) throw new ShapeError(`FactoredMatrix.BA: needs a square AB, got ${fmt(this.shape)}`);
    return matmul(this.B, this.A);
  }
  /** (AB)ᵀ = Bᵀ Aᵀ, still factored. */
  get T(): FactoredMatrix { return new FactoredMatrix(this.B.transpose(-2, -1), this.A.transpose(-2, -1)); }

  /** this @ other, factored through the smaller inner dimension. */
  matmul(other: Tensor | FactoredMatrix): FactoredMatrix {
    if (other instanceof FactoredMatrix) {
      // A B C D: keep the narrower of the two bottlenecks as the new inner dimension.
      return this.mdim <= other.mdim
        ? new FactoredMatrix(this.A, matmul(matmul(this.B, other.A), other.B))
        : new FactoredMatrix(matmul(this.AB, other.A), other.B);
    }
    if (other.ndim < 2) throw new ShapeError(`FactoredMatrix.matmul: other must be [..., rdim, n], got ${fmt(other.shape)}`);
    return new FactoredMatrix(this.A, matmul(this.B, other));
  }
  /** other @ this. */
  rmatmul(other: Tensor): FactoredMatrix {
    if (other.ndim < 2) throw new ShapeError(`FactoredMatrix.rmatmul: other must be [..., n, ldim], got ${fmt(other.shape)}`);
    return new FactoredMatrix(matmul(other, this.A), this.B);
  }

  /** One element of AB: row i of A times column j of B, batch indices first. */
  get(...idx: number[]): number {
    if (idx.length !== this.ndim) throw new ShapeError(`FactoredMatrix.get: ${idx.length} indices for a ${this.ndim}-dim matrix ${fmt(this.shape)}`);
    const b = idx.slice(0, -2), [i, j] = idx.slice(-2) as [number, number];
    let s = 0;
    for (let k = 0; k < this.mdim; k++) s += this.A.get(...b, i, k) * this.B.get(...b, k, j);
    return s;
  }

  /** ‖AB‖_F per batch element, [...batch] float64, from tr((AᵀA)(BBᵀ)): only mdim × mdim products. */
  norm(): Tensor {
    return this.perBatch((A, B) => Math.sqrt(Math.max(0, traceProduct(gram(A, true), gram(B, false)))));
  }

  /**
   * Thin SVD per batch element. When mdim < ldim and rdim: A = Q_A R_A, Bᵀ = Q_B R_B, so
   * AB = Q_A (R_A R_Bᵀ) Q_Bᵀ and only the mdim × mdim core is decomposed. Otherwise AB is formed.
   */
  svd(): SVD {
    const { ldim: m, mdim: k, rdim: n } = this;
    const batch = this.batchShape, nb = numel(batch);
    const r = k < m && k < n ? k : Math.min(m, n);
    const U = new Float64Array(nb * m * r), S = new Float64Array(nb * r), V = new Float64Array(nb * n * r);
    const As = slices(this.A), Bs = slices(this.B);
    for (let b = 0; b < nb; b++) {
      let res: { U: Mat; S: Float64Array; V: Mat };
      if (k < m && k < n) {
        const qa = qr(As[b]!), qb = qr(transposeMat(Bs[b]!));
        const core = jacobiSvd(mul(qa.R, transposeMat(qb.R)));
        res = { U: mul(qa.Q, core.U), S: core.S, V: mul(qb.Q, core.V) };
      } else res = jacobiSvd(mul(As[b]!, Bs[b]!));
      U.set(res.U.data, b * m * r); S.set(res.S, b * r); V.set(res.V.data, b * n * r);
    }
    return { U: new Tensor(U, [...batch, m, r]), S: new Tensor(S, [...batch, r]), V: new Tensor(V, [...batch, n, r]) };
  }

  /** Singular values only, [..., r] descending. */
  singularValues(): Tensor { return this.svd().S; }

  /**
   * Eigenvalues of BA per batch element, { re, im } [..., mdim] by decreasing magnitude: the same
   * nonzero eigenvalues as AB (whose other ldim − mdim are 0), from an mdim × mdim matrix. Needs ldim = rdim.
   */
  eigenvalues(): { re: Tensor; im: Tensor } {
    if (this.ldim !== this.rdim) throw new ShapeError(`FactoredMatrix.eigenvalues: needs a square AB, got ${fmt(this.shape)}`);
    const batch = this.batchShape, nb = numel(batch), k = this.mdim;
    const re = new Float64Array(nb * k), im = new Float64Array(nb * k);
    const As = slices(this.A), Bs = slices(this.B);
    for (let b = 0; b < nb; b++) {
      const ev = eigenvaluesGeneral(mul(Bs[b]!, As[b]!));
      re.set(ev.re, b * k); im.set(ev.im, b * k);
    }
    return { re: new Tensor(re, [...batch, k]), im: new Tensor(im, [...batch, k]) };
  }

  private perBatch(f: (A: Mat, B: Mat) => number): Tensor {
    const As = slices(this.A), Bs = slices(this.B);
    return new Tensor(Float64Array.from(As, (A, b) => f(A, Bs[b]!)), this.batchShape);
  }
}

// ---- small dense float64 linear algebra ----------------------------------------------------

/** Each [rows, cols] matrix of a [..., rows, cols] tensor, as float64 copies. */
export function slices(t: Tensor): Mat[] {
  const rows = t.shape[t.ndim - 2]!, cols = t.shape[t.ndim - 1]!, n = rows * cols;
  const flat = t.contiguous().toArray();
  return Array.from({ length: numel(t.shape.slice(0, -2)) }, (_, b) => ({ rows, cols, data: Float64Array.from(flat.subarray(b * n, (b + 1) * n)) }));
}

export function mul(a: Mat, b: Mat): Mat {
  if (a.cols !== b.rows) throw new ShapeError(`mul: [${a.rows}, ${a.cols}] @ [${b.rows}, ${b.cols}]`);
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) for (let k = 0; k < a.cols; k++) {
    const x = a.data[i * a.cols + k]!;
    if (x === 0) continue;
    for (let j = 0; j < b.cols; j++) out[i * b.cols + j]! += x * b.data[k * b.cols + j]!;
  }
  return { rows: a.rows, cols: b.cols, data: out };
}

export function transposeMat(a: Mat): Mat {
  const out = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j]!;
  return { rows: a.cols, cols: a.rows, data: out };
}

/** AᵀA (cols × cols) when left, else AAᵀ (rows × rows). */
export function gram(a: Mat, left: boolean): Mat {
  return left ? mul(transposeMat(a), a) : mul(a, transposeMat(a));
}

/** tr(XY) for square X, Y of the same size, without forming XY. */
export function traceProduct(x: Mat, y: Mat): number {
  let s = 0;
  const n = x.rows;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s += x.data[i * n + j]! * y.data[j * n + i]!;
  return s;
}

/**
 * Thin Householder QR of a [m, k] matrix with m >= k: Q [m, k] with orthonormal columns (skipped
 * when wantQ is false), R [k, k] upper triangular, A = QR.
 */
export function qr(a: Mat, wantQ?: true): { Q: Mat; R: Mat };
export function qr(a: Mat, wantQ: false): { R: Mat };
export function qr(a: Mat, wantQ = true): { Q?: Mat; R: Mat } {
  const m = a.rows, k = a.cols;
  if (m < k) throw new ShapeError(`qr: needs rows >= cols, got [${m}, ${k}]`);
  // Work on columns stored contiguously (Aᵀ, [k, m]): every inner loop then walks memory in order.
  const C = transposeMat(a).data;
  const vs: Float64Array[] = [], vvs: number[] = [];
  for (let j = 0; j < k; j++) {
    const v = new Float64Array(m - j); // the reflector acts on rows j..m-1
    let norm = 0;
    for (let i = j; i < m; i++) { v[i - j] = C[j * m + i]!; norm += v[i - j]! * v[i - j]!; }
    norm = Math.sqrt(norm);
    // Reflect onto −sign(x₀)‖x‖ e₀ so v never cancels.
    v[0] = v[0]! + (v[0]! >= 0 ? norm : -norm);
    let vv = 0;
    for (let i = 0; i < v.length; i++) vv += v[i]! * v[i]!;
    vs.push(v); vvs.push(vv);
    if (vv === 0) continue; // a zero column: nothing to reflect
    for (let c = j; c < k; c++) reflect(C, c * m + j, v, vv);
  }
  const R = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = i; j < k; j++) R[i * k + j] = C[j * m + i]!;
  if (!wantQ) return { R: { rows: k, cols: k, data: R } };
  // Q = H_0 H_1 … H_{k-1} applied to the first k columns of the identity (columns stored contiguously).
  const Qt = new Float64Array(k * m);
  for (let i = 0; i < k; i++) Qt[i * m + i] = 1;
  for (let j = k - 1; j >= 0; j--) {
    if (vvs[j] === 0) continue;
    for (let c = 0; c < k; c++) reflect(Qt, c * m + j, vs[j]!, vvs[j]!);
  }
  return { Q: transposeMat({ rows: k, cols: m, data: Qt }), R: { rows: k, cols: k, data: R } };
}

/** x ← (I − 2 v vᵀ / vᵀv) x for the slice x = data[off .. off + v.length). */
function reflect(data: Float64Array, off: number, v: Float64Array, vv: number): void {
  let d = 0;
  for (let i = 0; i < v.length; i++) d += v[i]! * data[off + i]!;
  const f = (2 * d) / vv;
  for (let i = 0; i < v.length; i++) data[off + i] = data[off + i]! - f * v[i]!;
}

/**
 * Thin SVD of any [m, n] matrix by one-sided Jacobi (Hestenes 1958): rotate column pairs until all
 * are orthogonal; their norms are the singular values. Accurate to float64 rounding for small
 * matrices. Returns U [m, r], S [r] descending, V [n, r] with r = min(m, n).
 */
export function jacobiSvd(a: Mat): { U: Mat; S: Float64Array; V: Mat } {
  if (a.rows < a.cols) {
    const t = jacobiSvd(transposeMat(a));
    return { U: t.V, S: t.S, V: t.U };
  }
  const m = a.rows, n = a.cols;
  const W = transposeMat(a).data; // columns of a as rows of W: [n, m], contiguous per column
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) for (let q = p + 1; q < n; q++) {
      let alpha = 0, beta = 0, gamma = 0;
      for (let i = 0; i < m; i++) {
        const x = W[p * m + i]!, y = W[q * m + i]!;
        alpha += x * x; beta += y * y; gamma += x * y;
      }
      if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma === 0) continue;
      rotated = true;
      const zeta = (beta - alpha) / (2 * gamma);
      const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
      const c = 1 / Math.sqrt(1 + t * t), s = c * t;
      for (let i = 0; i < m; i++) {
        const x = W[p * m + i]!, y = W[q * m + i]!;
        W[p * m + i] = c * x - s * y; W[q * m + i] = s * x + c * y;
      }
      for (let i = 0; i < n; i++) {
        const x = V[i * n + p]!, y = V[i * n + q]!;
        V[i * n + p] = c * x - s * y; V[i * n + q] = s * x + c * y;
      }
    }
    if (!rotated) break;
  }
  const norms = Array.from({ length: n }, (_, j) => {
    let s = 0;
    for (let i = 0; i < m; i++) s += W[j * m + i]! ** 2;
    return Math.sqrt(s);
  });
  const order = norms.map((_, j) => j).sort((x, y) => norms[y]! - norms[x]!);
  const U = new Float64Array(m * n), S = new Float64Array(n), Vs = new Float64Array(n * n);
  const tiny = (norms[order[0]!] ?? 0) * 1e-13;
  order.forEach((j, r) => {
    S[r] = norms[j]!;
    for (let i = 0; i < n; i++) Vs[i * n + r] = V[i * n + j]!;
    // A zero singular value leaves its U column at zero rather than dividing by 0.
    if (norms[j]! > tiny) for (let i = 0; i < m; i++) U[i * n + r] = W[j * m + i]! / norms[j]!;
  });
  return { U: { rows: m, cols: n, data: U }, S, V: { rows: n, cols: n, data: Vs } };
}

/**
 * Eigenvalues of a real square matrix, { re, im } by decreasing magnitude: reduce to Hessenberg
 * form, then complex single-shift QR with Wilkinson shifts and deflation from the bottom, which
 * converges to a triangular Schur form whose diagonal holds the (possibly complex) eigenvalues.
 */
export function eigenvaluesGeneral(a: Mat): { re: Float64Array; im: Float64Array } {
  const n = a.rows;
  if (a.cols !== n) throw new ShapeError(`eigenvalues: needs a square matrix, got [${a.rows}, ${a.cols}]`);
  const Hr = Float64Array.from(a.data), Hi = new Float64Array(n * n);
  hessenberg(Hr, n);
  const re = new Float64Array(n), im = new Float64Array(n);
  let scale = 0;
  for (const x of Hr) scale = Math.max(scale, Math.abs(x));
  const eps = 1e-14 * (scale || 1);
  let hi = n - 1, iter = 0;
  while (hi >= 0) {
    if (hi === 0) { re[0] = Hr[0]!; im[0] = Hi[0]!; hi--; continue; }
    // Deflate when the subdiagonal entry above the active corner has vanished.
    const sub = Math.hypot(Hr[hi * n + hi - 1]!, Hi[hi * n + hi - 1]!);
    if (sub <= eps || iter > 200) {
      re[hi] = Hr[hi * n + hi]!; im[hi] = Hi[hi * n + hi]!; hi--; iter = 0; continue;
    }
    let lo = hi - 1;
    while (lo > 0 && Math.hypot(Hr[lo * n + lo - 1]!, Hi[lo * n + lo - 1]!) > eps) lo--;
    iter++;
    // Wilkinson shift: the eigenvalue of the trailing 2×2 block nearer its last diagonal entry.
    const [ar, ai, br, bi, cr, ci, dr, di] = [
      Hr[(hi - 1) * n + hi - 1]!, Hi[(hi - 1) * n + hi - 1]!, Hr[(hi - 1) * n + hi]!, Hi[(hi - 1) * n + hi]!,
      Hr[hi * n + hi - 1]!, Hi[hi * n + hi - 1]!, Hr[hi * n + hi]!, Hi[hi * n + hi]!,
    ];
    const tr = [(ar + dr) / 2, (ai + di) / 2] as const;
    const half = [(ar - dr) / 2, (ai - di) / 2] as const;
    // disc = half² + b c
    const disc = csqrt(half[0] * half[0] - half[1] * half[1] + br * cr - bi * ci, 2 * half[0] * half[1] + br * ci + bi * cr);
    const l1 = [tr[0] + disc[0], tr[1] + disc[1]], l2 = [tr[0] - disc[0], tr[1] - disc[1]];
    let mu = Math.hypot(l1[0]! - dr, l1[1]! - di) < Math.hypot(l2[0]! - dr, l2[1]! - di) ? l1 : l2;
    // An exceptional shift now and then breaks the rare cycles of the plain shift.
    if (iter % 11 === 10) mu = [dr + Math.abs(cr), di];
    qrStep(Hr, Hi, n, lo, hi, mu[0]!, mu[1]!);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => Math.hypot(re[y]!, im[y]!) - Math.hypot(re[x]!, im[x]!));
  return { re: Float64Array.from(order, (i) => re[i]!), im: Float64Array.from(order, (i) => im[i]!) };
}

function csqrt(x: number, y: number): [number, number] {
  const r = Math.hypot(x, y);
  const a = Math.sqrt((r + x) / 2), b = Math.sqrt(Math.max(0, (r - x) / 2));
  return [a, y < 0 ? -b : b];
}

/** Householder reduction of a real [n, n] matrix (in place) to upper Hessenberg form; eigenvalues unchanged. */
function hessenberg(H: Float64Array, n: number): void {
  for (let j = 0; j < n - 2; j++) {
    const v = new Float64Array(n);
    let norm = 0;
    for (let i = j + 1; i < n; i++) { v[i] = H[i * n + j]!; norm += v[i]! * v[i]!; }
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    v[j + 1] = v[j + 1]! + (v[j + 1]! >= 0 ? norm : -norm);
    let vv = 0;
    for (let i = j + 1; i < n; i++) vv += v[i]! * v[i]!;
    // H ← P H P with P = I − 2 v vᵀ / vᵀv (a similarity transform).
    for (let c = 0; c < n; c++) {
      let d = 0;
      for (let i = j + 1; i < n; i++) d += v[i]! * H[i * n + c]!;
      const f = (2 * d) / vv;
      for (let i = j + 1; i < n; i++) H[i * n + c] = H[i * n + c]! - f * v[i]!;
    }
    for (let r = 0; r < n; r++) {
      let d = 0;
      for (let i = j + 1; i < n; i++) d += H[r * n + i]! * v[i]!;
      const f = (2 * d) / vv;
      for (let i = j + 1; i < n; i++) H[r * n + i] = H[r * n + i]! - f * v[i]!;
    }
  }
}

/** One shifted QR step H − μI = QR, H ← RQ + μI on the active block [lo, hi], by complex Givens rotations. */
function qrStep(Hr: Float64Array, Hi: Float64Array, n: number, lo: number, hi: number, mr: number, mi: number): void {
  for (let i = lo; i <= hi; i++) { Hr[i * n + i] = Hr[i * n + i]! - mr; Hi[i * n + i] = Hi[i * n + i]! - mi; }
  const rots: [number, number, number, number][] = []; // c (real), s = sr + i si, per step
  for (let k = lo; k < hi; k++) {
    const xr = Hr[k * n + k]!, xi = Hi[k * n + k]!, yr = Hr[(k + 1) * n + k]!, yi = Hi[(k + 1) * n + k]!;
    const nx = Math.hypot(xr, xi), r = Math.hypot(nx, Math.hypot(yr, yi));
    let c = 1, sr = 0, si = 0;
    if (r > 0) {
      if (nx === 0) { c = 0; sr = yr / r; si = -yi / r; }
      else {
        c = nx / r;
        // s = (x/|x|) conj(y) / r, so that [c s; −conj(s) c] maps (x, y) to (·, 0).
        const ur = xr / nx, ui = xi / nx;
        sr = (ur * yr + ui * yi) / r; si = (ui * yr - ur * yi) / r;
      }
    }
    rots.push([c, sr, si, 0]);
    // Rows k, k+1 ← G rows. Only the active block is transformed: the blocks above and beside it
    // are decoupled (block triangular), so they do not change its eigenvalues.
    for (let j = k; j <= hi; j++) {
      const ar = Hr[k * n + j]!, ai = Hi[k * n + j]!, br = Hr[(k + 1) * n + j]!, bi = Hi[(k + 1) * n + j]!;
      // new_a = c a + s b; new_b = −conj(s) a + c b
      Hr[k * n + j] = c * ar + (sr * br - si * bi); Hi[k * n + j] = c * ai + (sr * bi + si * br);
      Hr[(k + 1) * n + j] = -(sr * ar + si * ai) + c * br; Hi[(k + 1) * n + j] = -(sr * ai - si * ar) + c * bi;
    }
  }
  // H ← R Gᴴ: columns k, k+1 rotated by the conjugate transposes, in the same order.
  for (let k = lo; k < hi; k++) {
    const [c, sr, si] = rots[k - lo]!;
    for (let i = lo; i <= Math.min(hi, k + 2); i++) {
      const ar = Hr[i * n + k]!, ai = Hi[i * n + k]!, br = Hr[i * n + k + 1]!, bi = Hi[i * n + k + 1]!;
      // new_a = c a + conj(s) b; new_b = −s a + c b
      Hr[i * n + k] = c * ar + (sr * br + si * bi); Hi[i * n + k] = c * ai + (sr * bi - si * br);
      Hr[i * n + k + 1] = -(sr * ar - si * ai) + c * br; Hi[i * n + k + 1] = -(sr * ai + si * ar) + c * bi;
    }
  }
  for (let i = lo; i <= hi; i++) { Hr[i * n + i] = Hr[i * n + i]! + mr; Hi[i * n + i] = Hi[i * n + i]! + mi; }
}
