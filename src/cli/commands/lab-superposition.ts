// `circuitscope lab <name>`: the labs that reproduce a paper's result end to end. One `lab` command
// with a subcommand per lab, so grokking, induction, scaling and emergence each add one entry to
// `labs` below (and the command list stays short). Today: `lab superposition`.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError, type Flags } from "../args.js";
import type { Command } from "../command.js";
import { progress, type Output } from "../io.js";
import { renderReport, runSuperpositionLab } from "../../labs/superposition/index.js";

interface Lab { summary: string; usage: string; run(flags: Flags, out: Output): void | Promise<void> }

const superposition: Lab = {
  summary: "toy models of superposition (Elhage et al. 2022): sparsity sweep, geometry, report",
  usage: "circuitscope lab superposition [--n 20] [--m 5] [--sparsities 0,0.7,0.9,0.97,0.99,0.997] [--decay 0.7] [--steps 5000] [--batch 1024] [--lr 0.003] [--seed 0] [--out superposition-report] [--json]",
  run(flags, out) {
    const sparsities = flags.str("sparsities", "0,0.7,0.9,0.97,0.99,0.997").split(",").map((s) => {
      const v = Number(s);
      if (!(v >= 0 && v < 1)) throw new UsageError(`--sparsities: each value must be in [0, 1), got "${s}"`);
      return v;
    });
    const int = (name: string, def: number) => {
      const v = flags.num(name, def);
      if (!(Number.isInteger(v) && v > 0)) throw new UsageError(`--${name} must be a positive integer, got ${v}`);
      return v;
    };
    const opts = {
      nFeatures: int("n", 20), nHidden: int("m", 5), sparsities, decay: flags.num("decay", 0.7),
      steps: int("steps", 5000), batchSize: int("batch", 1024), lr: flags.num("lr", 3e-3), seed: flags.num("seed", 0),
    };
    const dir = flags.str("out", "superposition-report");
    flags.checkUnknown();
    if (opts.nHidden >= opts.nFeatures) throw new UsageError(`--m (${opts.nHidden}) must be smaller than --n (${opts.nFeatures})`);
    const bar = progress("training", opts.steps);
    const result = runSuperpositionLab({ ...opts, onStep: (_s, loss) => bar.tick(1, `loss ${loss.toFixed(4)}`) });
    bar.done();
    const files = renderReport(result);
    mkdirSync(dir, { recursive: true });
    // Temp file then rename, so a report is never half-written.
    for (const [name, text] of Object.entries(files)) { const p = join(dir, name); writeFileSync(p + ".tmp", text); renameSync(p + ".tmp", p); }
    out.info(`wrote ${Object.keys(files).length} files to ${dir}/`);
    const summary = result.instances.map(({ gram: _g, bias: _b, ...rest }) => rest);
    out.result({ out: dir, seconds: result.seconds, options: result.options, instances: summary }, () => {
      const rows = result.instances.map((x) => `${x.variant.padEnd(13)} S=${String(x.sparsity).padEnd(6)} represented ${String(x.represented).padStart(2)}/${opts.nFeatures}  in superposition ${String(x.inSuperposition).padStart(2)}  m/‖W‖²=${x.dimsPerFeature.toFixed(3)}`);
      return [`superposition lab: ${result.seconds.toFixed(1)} s, report in ${join(dir, "report.md")}`, ...rows].join("\n");
    });
  },
};

const labs: Record<string, Lab> = { superposition };

export const lab: Command = {
  name: "lab",
  summary: "reproduce a paper's result end to end: " + Object.keys(labs).join(", "),
  usage: ["circuitscope lab <name> [options]", ...Object.entries(labs).map(([k, l]) => `  ${k.padEnd(14)} ${l.summary}\n    ${l.usage}`)].join("\n"),
  run(pos, flags, out) {
    const name = pos[0];
    const l = name !== undefined ? labs[name] : undefined;
    if (!l) throw new UsageError(name ? `unknown lab "${name}" (labs: ${Object.keys(labs).join(", ")})` : `which lab? (${Object.keys(labs).join(", ")})`);
    return l.run(flags, out);
  },
};
