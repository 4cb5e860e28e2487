// Module: a tree of named parameters, buffers and child modules, registered explicitly with
// param(), buffer() and child() (no reflection over object fields). Names are dotted paths in
// registration order, own entries before children's ("blocks.0.attn.W_Q"), so the order is stable
// across runs and matches the order checkpoints are written in.
//
// A Module has no forward(): signatures differ per layer. Layers that map one tensor to one tensor
// implement `Layer` so Sequential can chain them.
import { Tensor } from "../tensor/tensor.js";
import { fmt } from "../tensor/shape.js";
import { noGrad } from "../tensor/autodiff.js";
import { Parameter } from "./parameter.js";

/** A module whose forward maps one tensor to one tensor. */
export interface Layer extends Module {
  forward(x: Tensor): Tensor;
}

export type StateDictIssue =
  | { code: "missing_key"; key: string; message: string }
  | { code: "unexpected_key"; key: string; message: string }
  | { code: "shape_mismatch"; key: string; expected: number[]; got: number[]; message: string }
  | { code: "dtype_mismatch"; key: string; expected: string; got: string; message: string };

/** A state dict that does not fit the module; `issues` lists every problem, not just the first. */
export class StateDictError extends Error {
  constructor(readonly issues: StateDictIssue[]) {
    super(`loadStateDict: ${issues.length} problem${issues.length === 1 ? "" : "s"}:\n  ${issues.map((i) => i.message).join("\n  ")}`);
    this.name = "StateDictError";
  }
}

export interface LoadResult {
  missingKeys: string[]; // in the module, absent from the dict (only possible with strict: false)
  unexpectedKeys: string[]; // in the dict, absent from the module (only possible with strict: false)
}

export abstract class Module {
  private readonly ownParams = new Map<string, Parameter>();
  private readonly ownBuffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();
  /** Set by train()/eval(); layers with train-only behaviour (dropout) read it. */
  training = true;

  private checkName(name: string): void {
    if (!name || name.includes(".")) throw new Error(`${this.constructor.name}: invalid name "${name}" (non-empty, no dots)`);
    if (this.ownParams.has(name) || this.ownBuffers.has(name) || this.children.has(name))
      throw new Error(`${this.constructor.name}: "${name}" is already registered`);
  }

  /** Register a trainable tensor. Non-Parameter tensors are adopted (see Parameter.from). */
  protected param(name: string, t: Tensor): Parameter {
    this.checkName(name);
    if (t.node) throw new Error(`${this.constructor.name}.param("${name}"): must be a leaf tensor, not the output of an op (detach() it first)`);
    const p = Parameter.from(t, name);
    p.name ??= name; // for error messages; a tied parameter keeps its first name
    this.ownParams.set(name, p);
    return p;
  }

  /** Register non-trainable state that belongs in the state dict (e.g. a mask). */
  protected buffer(name: string, t: Tensor): Tensor {
    this.checkName(name);
    // Stored contiguous from offset 0 so loadStateDict can copy straight into it.
    const b = t.isContiguous && t.offset === 0 && t.data.length === t.size ? t.detach() : new Tensor(t.contiguous().toArray().slice(), t.shape);
    this.ownBuffers.set(name, b);
    return b;
  }

  /** Register a submodule; its entries appear under "name.". */
  protected child<M extends Module>(name: string, m: M): M {
    this.checkName(name);
    this.children.set(name, m);
    return m;
  }

  /** This module and every descendant with its dotted path ("" for this one), depth first. */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this.children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /**
   * Every parameter with its dotted name, each tensor once: a parameter registered under two names
   * (tied embeddings) is listed under the first, so optimizers update it once.
   */
  namedParameters(): [string, Parameter][] {
    const seen = new Set<Tensor>(), out: [string, Parameter][] = [];
    for (const [name, p] of this.allEntries("params")) if (!seen.has(p)) { seen.add(p); out.push([name, p as Parameter]); }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(): [string, Tensor][] {
    return this.allEntries("buffers");
  }

  private allEntries(kind: "params" | "buffers"): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      const own = kind === "params" ? m.ownParams : m.ownBuffers;
      for (const [n, t] of own) out.push([prefix ? `${prefix}.${n}` : n, t]);
    }
    return out;
  }

  /**
   * Parameters then buffers under their dotted names (tied tensors under every name, as torch does).
   * Values share storage with the module; copy them to keep a snapshot across training steps.
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [n, t] of [...this.allEntries("params"), ...this.allEntries("buffers")]) out.set(n, t.detach());
    return out;
  }

  /**
   * Copy values into this module's tensors (in place, so optimizers keep their references).
   * Every key and shape is checked before anything is written; with strict (the default) a missing
   * or unexpected key is an error, and a shape or dtype-kind mismatch always is.
   */
  /**
   * Copy a state dict into the registered tensors. With `adopt`, a source tensor that is a whole
   * contiguous array of the target's dtype becomes the target's storage instead of being copied (the
   * caller gives it up: loading from a file, where the copy would only double the writes).
   */
  loadStateDict(dict: Map<string, Tensor> | Record<string, Tensor>, opts: { strict?: boolean; adopt?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const src = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const targets = new Map([...this.allEntries("params"), ...this.allEntries("buffers")]);
    const issues: StateDictIssue[] = [];
    const missingKeys: string[] = [], unexpectedKeys: string[] = [];
    for (const [key, t] of targets) {
      const s = src.get(key);
      if (!s) { missingKeys.push(key); continue; }
      if (!s.shapeEquals(t.shape))
        issues.push({ code: "shape_mismatch", key, expected: t.shape.slice(), got: s.shape.slice(), message: `"${key}": expected shape ${fmt(t.shape)}, got ${fmt(s.shape)}` });
      // float32 and float64 convert into each other; ints and floats do not mix silently.
      else if ((s.dtype === "int32") !== (t.dtype === "int32"))
        issues.push({ code: "dtype_mismatch", key, expected: t.dtype, got: s.dtype, message: `"${key}": expected ${t.dtype}, got ${s.dtype}` });
    }
    for (const key of src.keys()) if (!targets.has(key)) unexpectedKeys.push(key);
    if (strict) {
      for (const key of missingKeys) issues.push({ code: "missing_key", key, message: `missing key "${key}" (in the module, not in the state dict)` });
      for (const key of unexpectedKeys) issues.push({ code: "unexpected_key", key, message: `unexpected key "${key}" (in the state dict, not in the module)` });
    }
    if (issues.length) throw new StateDictError(issues);
    const adopted = new Set<unknown>(); // one storage is adopted by one tensor only, never shared
    for (const [key, t] of targets) {
      const s = src.get(key);
      if (!s || s.data === t.data) continue;
      if (opts.adopt && !adopted.has(s.data) && t.adoptStorage(s)) { adopted.add(s.data); continue; }
      // Registered tensors are contiguous from offset 0 (see param/buffer), so one set() copies.
      t.data.set(noGrad(() => s.contiguous().toArray()));
      t.version++;
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Drop every parameter's gradient (set to null, as torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Number of scalar parameters, counting tied tensors once. */
  numParams(): number {
    let n = 0;
    for (const p of this.parameters()) n += p.size;
    return n;
  }

  /** Set training mode on this module and every descendant. */
  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }
}

/** An indexed list of modules, named "0", "1", … ("blocks.3.attn"). */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: readonly M[];

  constructor(items: M[]) {
    super();
    this.items = items.map((m, i) => this.child(String(i), m));
  }

  get length(): number { return this.items.length; }
  at(i: number): M {
    const m = this.items.at(i);
    if (!m) throw new RangeError(`ModuleList: index ${i} out of range for length ${this.items.length}`);
    return m;
  }
  [Symbol.iterator](): Iterator<M> { return this.items[Symbol.iterator](); }
}

/** Layers applied in order: forward(x) = layers[n-1](…layers[0](x)). */
export class Sequential extends ModuleList<Layer> implements Layer {
  forward(x: Tensor): Tensor {
    for (const l of this.items) x = l.forward(x);
    return x;
  }
}
