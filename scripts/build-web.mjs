// Bundle the web workbench's page script (src/web/main.ts) into one ES module: dist/web/app.js,
// which `circuitscope serve` sends as /app.js. Run by `npm run build` and `prepare` (so `npm ci`
// leaves it in place). Usage: node scripts/build-web.mjs [outfile]
import { fileURLToPath } from "node:url";
import { bundle } from "./bundle.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
await bundle(`${root}src/web/main.ts`, process.argv[2] ?? `${root}dist/web/app.js`, "web workbench");
