// Every technique descriptor, in the order surfaces list them. A new technique is one file here
// and one line in this list: the CLI command, the API route and the page view follow from it.
import type { Technique } from "./technique.js";
import { lens } from "./lens.js";
import { probe } from "./probe.js";

export const TECHNIQUES: readonly Technique[] = [lens, probe] as unknown as readonly Technique[];

export { lens, probe };
export * from "./technique.js";
