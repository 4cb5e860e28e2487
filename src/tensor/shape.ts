// Shape arithmetic: sizes, strides, broadcasting, axis normalisation, dimension coalescing.
// Errors name the op and both shapes, in TransformerLens's dimension vocabulary where it applies.
export type Shape = readonly number[];

export class ShapeError extends Error {
  override name = "ShapeError";
}

export const numel = (shape: Shape): number => {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
};

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

export const shapeEq = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

export const fmt = (s: Shape): string => `[${s.join(", ")}]`;

/** NumPy broadcasting: align right; sizes must match or be 1. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1, db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeError(`${op}: shapes ${fmt(a)} and ${fmt(b)} do not broadcast (axis ${i - n}: ${da} vs ${db})`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that read a tensor of (shape, strides) as if it had shape `to` (0 on broadcast axes). */
export function broadcastStrides(shape: Shape, strides: readonly number[], to: Shape): number[] {
  const out = new Array<number>(to.length).fill(0);
  const off = to.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 && to[off + i] !== 1 ? 0 : strides[i]!;
  return out;
}

export function normAxis(op: string, axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim || !Number.isInteger(a)) throw new ShapeError(`${op}: axis ${axis} out of range for a tensor of ${ndim} dims`);
  return a;
}

/**
 * Merge adjacent dimensions that every operand walks contiguously, and drop size-1 dimensions, so
 * kernels loop over as few axes as possible. Returns the new shape and each operand's strides.
 */
export function coalesce(shape: Shape, stridesList: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = stridesList.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    const mergeable = last >= 0 && stridesList.every((s, k) => outStrides[k]![last] === s[d]! * shape[d]!);
    if (mergeable) {
      outShape[last]! *= shape[d]!;
      stridesList.forEach((s, k) => { outStrides[k]![last] = s[d]!; });
    } else {
      outShape.push(shape[d]!);
      stridesList.forEach((s, k) => outStrides[k]!.push(s[d]!));
    }
  }
  return { shape: outShape, strides: outStrides };
}
