// Bundle the web workbench's page script (src/web/main.ts) into one ES module: dist/web/app.js,
// which `circuitscope serve` sends as /app.js. Run by `npm run build` and `prepare` (so `npm ci`
// leaves it in place). Usage: node scripts/build-web.mjs [outfile]
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outfile = process.argv[2] ?? `${root}dist/web/app.js`;
await build({
  entryPoints: [`${root}src/web/main.ts`],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  outfile,
  logLevel: "warning",
});
console.error(`circuitscope: web workbench bundle written to ${outfile}`);
