// A small, typed argv parser: positionals plus --flag, --key value and --key=value. No dependency,
// because the CLI's needs are simple and its errors should name our flags.
export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
}

export class UsageError extends Error {
  override name = "UsageError";
}

/** A flag's value as an integer >= min, or a UsageError naming the flag. */
export function intAtLeast(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** A flag's value as a number > 0, or a UsageError naming the flag. */
export function positive(name: string, v: number): number {
  if (!(v > 0)) throw new UsageError(`--${name} must be > 0, got ${v}`);
  return v;
}

export function parseArgs(argv: string[]): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") { positionals.push(...argv.slice(i + 1)); break; }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      if (eq > 0) { flags.set(a.slice(2, eq), a.slice(eq + 1)); continue; }
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith("--")) { flags.set(a.slice(2), next); i++; }
      else flags.set(a.slice(2), true);
    } else positionals.push(a);
  }
  return { positionals, flags };
}

/** Read typed flag values, remembering which flags the command knows so unknown ones are errors. */
export class Flags {
  private known = new Set<string>(["json", "backend", "help"]);
  constructor(private readonly args: ParsedArgs) {}

  bool(name: string): boolean { this.known.add(name); return this.args.flags.get(name) === true || this.args.flags.get(name) === "true"; }
  str(name: string, def: string): string;
  str(name: string): string | undefined;
  str(name: string, def?: string): string | undefined {
    this.known.add(name);
    const v = this.args.flags.get(name);
    if (v === true) throw new UsageError(`--${name} needs a value`);
    return v ?? def;
  }
  num(name: string, def: number): number {
    const v = this.str(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
    return n;
  }
  /** Throw on flags the command never asked about (typos). */
  checkUnknown(): void {
    for (const k of this.args.flags.keys()) if (!this.known.has(k)) throw new UsageError(`unknown flag --${k}`);
  }
}
