#!/usr/bin/env node
// The circuitscope CLI: commander parses argv; every technique descriptor becomes a command
// (technique-command.ts), the other commands keep their own flag reading behind a pass-through. It
// picks the backend, dispatches, and turns errors into a clear message and exit code. The only
// place (with server/ and web/) that prints or exits.
import { Command as Cmd, CommanderError } from "commander";
import { Flags, parseArgs, UsageError } from "./args.js";
import { makeOutput } from "./io.js";
import type { Command } from "./command.js";
import { techniqueCommand } from "./technique-command.js";
import { loadSubject } from "../techniques/subject.js";
import { TECHNIQUES } from "../techniques/index.js";
import { info } from "./commands/info.js";
import { demo } from "./commands/demo.js";
import { run } from "./commands/run.js";
import { fitScaling } from "./commands/fit-scaling.js";
import { lab } from "./commands/lab.js";
import { trainChar } from "./commands/train.js";
import { trainLm } from "./commands/train.js";
import { saeCmd } from "./commands/sae.js";
import { serve } from "./commands/serve.js";
import { convert } from "./commands/convert.js";
import { download, resolveModelArg } from "./commands/download.js";
import { models } from "./commands/models.js";
import { useBackend } from "../backend/init.js";
import type { BackendName } from "../backend/registry.js";

// Commands that are not techniques (no model to analyse, or a server), and techniques not yet moved to a descriptor.
const legacy: Command[] = [
  demo, info, run, serve, convert, download, models, saeCmd,
  trainLm, trainChar, lab, fitScaling,
];
// In the order help lists them: basics, techniques, training, labs.
const ORDER = ["demo", "info", "run", "serve", "convert", "download", "models", "lens", "dla", "attention", "activations", "patch", "path-patch", "ablate", "attribute", "circuits", "qk-ov", "neurons", "sae", "probe", "discover", "scrub", "train-lm", "train-char", "lab", "fit-scaling"];
// Which positional of a legacy command names the model: a hub id there is found in the cache or downloaded first.
const MODEL_ARG: Record<string, number> = { run: 0, serve: 0, sae: 1 };

/** --backend NAME anywhere in argv: taken out before commander sees the command's own flags. */
function takeBackend(argv: string[]): { argv: string[]; backend: string | undefined } {
  const rest: string[] = [];
  let backend: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--backend") { backend = argv[++i]; if (backend === undefined) throw new UsageError("--backend needs a value"); }
    else if (a.startsWith("--backend=")) backend = a.slice("--backend=".length);
    else rest.push(a);
  }
  return { argv: rest, backend };
}

function program(json: boolean, setCode: (c: number) => void): Cmd {
  const p = new Cmd("circuitscope")
    .description("circuitscope — a mechanistic-interpretability workbench")
    .usage("<command> [options]   (every command takes --json and --backend ts|wasm|native)")
    .exitOverride().showSuggestionAfterError(true)
    .configureOutput({ writeErr: () => {}, writeOut: (s) => process.stdout.write(s) })
    .addHelpText("after", "\ncircuitscope <command> --help shows a command's options.");
  const byName = new Map<string, Cmd>();
  for (const t of TECHNIQUES) byName.set(t.name, techniqueCommand(t, async (m) => { await resolveModelArg(m, makeOutput(json)); return loadSubject(m); }, makeOutput, setCode));
  for (const c of legacy) {
    const sub = new Cmd(c.name).summary(c.summary).description(c.summary)
      .allowUnknownOption().allowExcessArguments().argument("[args...]")
      .action(async (_args: string[], _o: unknown, self: Cmd) => {
        const args = parseArgs(self.args);
        const flags = new Flags(args);
        if (flags.bool("help")) { process.stdout.write(c.usage + "\n"); return; }
        const model = args.positionals[MODEL_ARG[c.name] ?? -1];
        if (model !== undefined) await resolveModelArg(model, makeOutput(json));
        await c.run(args.positionals, flags, makeOutput(json));
      });
    byName.set(c.name, sub);
  }
  // addCommand does not pass settings down: each command throws instead of exiting and prints no errors itself.
  for (const n of ORDER) {
    const sub = byName.get(n)!.copyInheritedSettings(p);
    // Legacy commands read --help themselves (their usage text); set after copying, which would bring the parent's back.
    if (legacy.some((c) => c.name === n)) sub.helpOption(false);
    p.addCommand(sub);
  }
  return p;
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json");
  const name = argv.find((a) => !a.startsWith("-"));
  let code = 0;
  try {
    const { argv: rest, backend } = takeBackend(argv);
    const p = program(json, (c) => { code = c; });
    if (rest.length === 0 || rest[0] === "help" || (rest.length === 1 && rest[0] === "--help")) { process.stdout.write(p.helpInformation()); return 0; }
    if (p.commands.some((c) => c.name() === rest[0]) && !rest.includes("--help")) {
      const b = useBackend(backend as BackendName | undefined);
      process.stderr.write(b.message + "\n");
    }
    await p.parseAsync(rest, { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      const message = e.message.replace(/^error: /, "").replace(/\n/g, " ");
      if (json) process.stdout.write(JSON.stringify({ error: { name: "UsageError", message } }) + "\n");
      process.stderr.write(`circuitscope${name ? ` ${name}` : ""}: ${message}\n`);
      return 2;
    }
    const err = e as Error;
    if (json) process.stdout.write(JSON.stringify({ error: { name: err.name, message: err.message } }) + "\n");
    process.stderr.write(`circuitscope ${name ?? ""}: ${err.message}\n`);
    const legacyCmd = legacy.find((c) => c.name === name);
    if (err instanceof UsageError && legacyCmd) process.stderr.write(`usage: ${legacyCmd.usage}\n`);
    else if (process.env.CIRCUITSCOPE_DEBUG) process.stderr.write(`${err.stack}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
