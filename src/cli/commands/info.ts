// `circuitscope info`: which kernel backends exist on this machine and which one is active.
import { backendStatus, getBackend } from "../../backend/registry.js";
import type { Command } from "../command.js";
import os from "node:os";

export const info: Command = {
  name: "info",
  summary: "show the machine, the available kernel backends and the active one",
  usage: "circuitscope info [--json]",
  run(_pos, flags, out) {
    flags.checkUnknown();
    const doc = {
      node: process.version,
      cpu: os.cpus()[0]?.model ?? "unknown",
      cores: os.cpus().length,
      active: getBackend().description,
      backends: backendStatus(),
    };
    out.result(doc, () => [
      `node ${doc.node} on ${doc.cpu} (${doc.cores} cores)`,
      `active backend: ${doc.active}`,
      ...doc.backends.map((b) => `  ${b.available ? "✓" : "✗"} ${b.name.padEnd(7)} ${b.description}`),
    ].join("\n"));
  },
};
