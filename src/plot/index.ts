// Plots as SVG strings (see svg.ts).
export { lineChart, heatmap, scatter, niceTicks, viridis, diverging, type Series, type Axes, type HeatmapOptions, type ScatterPoint } from "./svg.js";
export { stackVertically } from "./stack.js";
