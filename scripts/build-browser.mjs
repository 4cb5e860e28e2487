// Bundle the browser entry (src/browser.ts) into one ES module: dist/browser/circuitscope.js.
// Usage: node scripts/build-browser.mjs [outfile]
import { fileURLToPath } from "node:url";
import { bundle } from "./bundle.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
await bundle(`${root}src/browser.ts`, process.argv[2] ?? `${root}dist/browser/circuitscope.js`, "browser");
