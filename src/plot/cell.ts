// The side of a heatmap cell for R × C cells: the picture stays near 480 px, cells between 8 and 48.
export const cellSize = (R: number, C: number) => Math.max(8, Math.min(48, Math.floor(480 / Math.max(R, C, 1))));
