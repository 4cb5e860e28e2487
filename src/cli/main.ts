#!/usr/bin/env node
// The circuitscope CLI: parses argv, picks the backend, dispatches to a command and turns errors
// into a clear message and exit code. The only place (with server/ and web/) that prints or exits.
import { Flags, parseArgs, UsageError } from "./args.js";
import { makeOutput } from "./io.js";
import type { Command } from "./command.js";
import { info } from "./commands/info.js";
import { demo } from "./commands/demo.js";
import { run } from "./commands/run.js";
import { circuits } from "./commands/circuits.js";
import { fitScaling } from "./commands/fit-scaling.js";
import { lab } from "./commands/lab.js";
import { trainChar } from "./commands/train.js";
import { trainLm } from "./commands/train.js";
import { attribute } from "./commands/attribute.js";
import { patch } from "./commands/patch.js";
import { lens } from "./commands/lens.js";
import { ablateCmd } from "./commands/ablate.js";
import { probe } from "./commands/probe.js";
import { pathPatchCmd } from "./commands/path-patch.js";
import { neuronsCmd } from "./commands/neurons.js";
import { dla } from "./commands/dla.js";
import { attention } from "./commands/attention.js";
import { scrub } from "./commands/scrub.js";
import { discover } from "./commands/discover.js";
import { qkOv } from "./commands/qk-ov.js";
import { saeCmd } from "./commands/sae.js";
import { serve } from "./commands/serve.js";
import { convert } from "./commands/convert.js";
import { useBackend } from "../backend/init.js";
import type { BackendName } from "../backend/registry.js";

// In the order `circuitscope help` lists them: basics, techniques, training, labs.
const commands: Command[] = [
  demo, info, run, serve, convert,
  lens, dla, attention, patch, pathPatchCmd, ablateCmd, attribute, circuits, qkOv, neuronsCmd, saeCmd, probe, discover, scrub,
  trainLm, trainChar, lab, fitScaling,
];

function help(): string {
  return [
    "circuitscope — a mechanistic-interpretability workbench",
    "",
    "usage: circuitscope <command> [options]   (every command takes --json and --backend ts|wasm|native)",
    "",
    ...commands.map((c) => `  ${c.name.padEnd(11)} ${c.summary}`),
    "",
    "circuitscope <command> --help shows a command's options.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const flags = new Flags(args);
  const json = flags.bool("json");
  const out = makeOutput(json);
  const name = args.positionals[0];
  if (!name || name === "help" || (name === undefined && flags.bool("help"))) { process.stdout.write(help() + "\n"); return 0; }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) { process.stderr.write(`circuitscope: unknown command "${name}"\n\n${help()}\n`); return 2; }
  if (flags.bool("help")) { process.stdout.write(cmd.usage + "\n"); return 0; }
  try {
    const b = useBackend(flags.str("backend") as BackendName | undefined);
    out.info(b.message);
    await cmd.run(args.positionals.slice(1), flags, out);
    return 0;
  } catch (e) {
    const err = e as Error;
    if (json) process.stdout.write(JSON.stringify({ error: { name: err.name, message: err.message } }) + "\n");
    process.stderr.write(`circuitscope ${name}: ${err.message}\n`);
    if (err instanceof UsageError) process.stderr.write(`usage: ${cmd.usage}\n`);
    else if (process.env.CIRCUITSCOPE_DEBUG) process.stderr.write(`${err.stack}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
