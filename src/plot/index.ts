// Plots as SVG strings (see svg.ts).
export { lineChart, heatmap, scatter, niceTicks, viridis, diverging, type Series, type Axes, type HeatmapOptions, type ScatterPoint } from "./svg.js";
// Token-coloured text (SVG/HTML), bar charts and histograms, small-multiple grids.
export { tokensSvg, tokensHtml, tokenSpans, tokenColour, visibleToken, colourLegend, legendSvg, htmlPage, type TokenColourOptions } from "./tokens.js";
export { barChart, histogramChart, type Bar, type BarOptions, type HistogramChartOptions } from "./bars.js";
export { svgGrid } from "./grid.js";
export { scrubChart, type ScrubChartData, type ScrubTreeNode } from "./scrub-tree.js";
export { circuitGraphSvg, type DrawnGraph, type DrawnNode, type GraphDrawOptions } from "./graph.js";
export { stackVertically } from "./stack.js";
