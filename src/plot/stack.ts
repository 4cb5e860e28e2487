// Stacks SVG figures (as returned by lineChart, heatmap, scatter) into one SVG, top to bottom, so
// panels that share an x axis (say a loss and a score over the same training steps) read as one figure.

const dim = (svg: string, name: "width" | "height"): number => {
  const m = new RegExp(`^<svg[^>]*\\s${name}="([0-9.]+)"`).exec(svg);
  if (!m) throw new Error(`stackVertically: a panel has no ${name} attribute on its <svg> element`);
  return Number(m[1]);
};

/** One SVG holding the panels one under the other, each at its own size, left-aligned. */
export function stackVertically(panels: readonly string[]): string {
  const W = Math.max(0, ...panels.map((p) => dim(p, "width")));
  let y = 0, body = "";
  for (const p of panels) {
    // A nested <svg> keeps each panel's own coordinate system; only the outer one gets the xmlns.
    body += p.trim().replace(/^<svg xmlns="[^"]*"/, `<svg x="0" y="${y}"`);
    y += dim(p, "height");
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}">${body}</svg>\n`;
}
