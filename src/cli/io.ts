// Output discipline for every command: progress and human text go to stderr; with --json, stdout
// carries exactly one JSON document; without it, stdout carries the human-readable result.
export interface Output {
  json: boolean;
  /** Progress or diagnostics (always stderr). */
  info(msg: string): void;
  /** The command's result: a JSON document with --json, else the given text. */
  result(doc: unknown, text: () => string): void;
}

export function makeOutput(json: boolean): Output {
  return {
    json,
    info: (msg) => { process.stderr.write(msg + "\n"); },
    result: (doc, text) => { process.stdout.write(json ? JSON.stringify(doc, null, 2) + "\n" : text() + "\n"); },
  };
}

/** A one-line progress bar on stderr with rate and ETA; redraws in place on a terminal. */
export function progress(label: string, total: number): { tick(n?: number, extra?: string): void; done(): void } {
  const start = Date.now();
  let done = 0, last = 0;
  const tty = process.stderr.isTTY;
  const draw = (extra = "") => {
    const el = (Date.now() - start) / 1000, frac = total > 0 ? done / total : 1;
    const eta = frac > 0 ? el * (1 - frac) / frac : 0;
    const bar = "#".repeat(Math.round(frac * 20)).padEnd(20, ".");
    const line = `${label} [${bar}] ${done}/${total} ${el.toFixed(1)}s eta ${eta.toFixed(1)}s ${extra}`;
    process.stderr.write(tty ? `\r${line}\x1b[K` : line + "\n");
  };
  return {
    tick(n = 1, extra = "") {
      done += n;
      const now = Date.now();
      if (tty ? now - last > 100 : now - last > 2000 || done === total) { last = now; draw(extra); }
    },
    done() { if (tty) process.stderr.write("\n"); },
  };
}
