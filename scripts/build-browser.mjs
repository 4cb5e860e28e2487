// Bundle the browser entry (src/browser.ts) into one ES module: dist/browser/circuitscope.js.
// Usage: node scripts/build-browser.mjs [outfile]
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outfile = process.argv[2] ?? `${root}dist/browser/circuitscope.js`;
await build({
  entryPoints: [`${root}src/browser.ts`],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  outfile,
  logLevel: "warning",
});
console.error(`circuitscope: browser bundle written to ${outfile}`);
