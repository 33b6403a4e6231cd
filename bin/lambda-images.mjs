#!/usr/bin/env node
// The package's command. It runs the compiled JavaScript in this process (an installed package
// has only that; a development checkout compiles changed sources first, see compiled.mjs), and
// falls back to the TypeScript sources through tsx only when they cannot be compiled.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CLI_BUNDLE } from "./bundle.mjs";
import { compiledEntry } from "./compiled.mjs";
import { runCompiled } from "./run-bundle.mjs";

// The one-file bundle of the command when there is one (see bundle.mjs), else its modules.
const compiled = compiledEntry(CLI_BUNDLE) ?? compiledEntry("src/cli/main.js");
if (compiled) {
  // main.js runs its command when it is the process's entry script.
  process.argv[1] = compiled;
  await runCompiled(compiled, process.argv[2]);
} else {
  const source = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), source, ...process.argv.slice(2)], { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
