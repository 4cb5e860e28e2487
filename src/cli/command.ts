// The shape of a CLI command: a name, a one-line summary, usage text and a run function.
import type { Flags } from "./args.js";
import type { Output } from "./io.js";

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(positionals: string[], flags: Flags, out: Output): Promise<void> | void;
}
