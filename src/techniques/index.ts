// Every technique descriptor, in the order surfaces list them. A new technique is one file here
// and one line in this list: the CLI command, the API route and the page view follow from it.
import type { Technique } from "./technique.js";
import { lens } from "./lens.js";
import { probe } from "./probe.js";
import { attention } from "./attention.js";
import { dla } from "./dla.js";
import { ablate } from "./ablate.js";
import { attribute } from "./attribute.js";
import { activations } from "./activations.js";
import { patch } from "./patch.js";
import { pathPatch } from "./path-patch.js";
import { discover } from "./discover.js";
import { scrub } from "./scrub.js";
import { circuits } from "./circuits.js";
import { qkOv } from "./qk-ov.js";
import { neurons } from "./neurons.js";

/** By name: the typed map the API's route types come from. */
export const techniques = { lens, probe, attention, dla, ablate, attribute, activations, patch, "path-patch": pathPatch, discover, scrub, circuits, "qk-ov": qkOv, neurons } as const;
export type TechniqueName = keyof typeof techniques;

// Technique<S, R> is contravariant in S through run(): the list holds them at their common erasure.
export const TECHNIQUES: readonly Technique[] = Object.values(techniques) as unknown as readonly Technique[];

export { lens, probe, attention, dla, ablate, attribute, activations, patch, pathPatch, discover, scrub, circuits, qkOv, neurons };
export * from "./technique.js";
