// One esbuild call for every browser bundle we ship (the engine's, the workbench page's): an ES module
// for es2022 browsers with everything inlined, so a page needs no network.
import { build } from "esbuild";

export async function bundle(entry, outfile, what) {
  await build({ entryPoints: [entry], bundle: true, format: "esm", platform: "browser", target: "es2022", outfile, logLevel: "warning" });
  console.error(`circuitscope: ${what} bundle written to ${outfile}`);
}
