// Markdown pieces every lab report shares.
import { conditioning } from "../analysis/conditioning.js";

/** The "Figures" section: one image link per SVG the report writes. */
export function figureSection(files: Record<string, string>): string[] {
  return ["## Figures", "", ...Object.keys(files).filter((f) => f.endsWith(".svg")).map((f) => `![${f}](${f})`), ""];
}

/**
 * A conclusion chosen by a computed check, with the check's numbers beside it, so every report
 * phrases checks the same way: `yes` when the check holds, `no` when it fails, `undecided` when it
 * cannot be evaluated (null: e.g. a threshold never crossed or an ill-conditioned ratio).
 */
export function verdict(check: boolean | null, yes: string, no: string, numbers: string, undecided = "Inconclusive"): string {
  return `${check === null ? undecided : check ? yes : no} (${numbers})`;
}

/** True when a ratio's denominator is ~0 next to the quantities it is formed from: the one rule of analysis/conditioning.ts. */
export function illConditioned(den: number, scale: number): boolean {
  return conditioning(den, scale).illConditioned;
}
