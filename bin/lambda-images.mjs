#!/usr/bin/env node
// Runs src/cli/main.ts through tsx: the project ships TypeScript sources (typescript 7 is the
// native compiler, and ts-node does not work with it).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
// Resolved from this file, so the bin works from any working directory.
const tsx = import.meta.resolve("tsx");
const child = spawn(process.execPath, ["--import", tsx, cli, ...process.argv.slice(2)], { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
