// Markdown pieces every lab report shares.

/** The "Figures" section: one image link per SVG the report writes. */
export function figureSection(files: Record<string, string>): string[] {
  return ["## Figures", "", ...Object.keys(files).filter((f) => f.endsWith(".svg")).map((f) => `![${f}](${f})`), ""];
}
