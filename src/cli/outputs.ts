// Writing a command's --out files: any number of pictures (SVG, HTML) plus the JSON document that
// lists them all (itself included), each written atomically (temp + rename) so a reader never sees
// half a file. patch.ts's writeOutputs is the one-SVG shorthand.
import fs from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../io/safetensors.js";

/** Write each [file name, text] and then `${jsonName}.json` into outDir; doc.files gets every path. */
export function writeOutputFiles(outDir: string, pictures: readonly (readonly [string, string])[], jsonName: string, doc: { files: string[] }): string[] {
  fs.mkdirSync(outDir, { recursive: true });
  const paths = [...pictures.map(([name]) => path.join(outDir, name)), path.join(outDir, `${jsonName}.json`)];
  doc.files.push(...paths);
  pictures.forEach(([, text], i) => writeFileAtomic(paths[i]!, (fd) => fs.writeFileSync(fd, text)));
  writeFileAtomic(paths[paths.length - 1]!, (fd) => fs.writeFileSync(fd, JSON.stringify(doc, null, 2) + "\n"));
  return paths;
}

/** A comma-separated list of integers (e.g. "0,5,7"), each checked; UsageError-free: returns null if malformed. */
export function intList(s: string): number[] | null {
  const parts = s.split(",").map((x) => x.trim());
  if (parts.some((x) => !/^-?\d+$/.test(x))) return null;
  return parts.map(Number);
}

export { cellSize } from "../plot/svg.js";
