#!/usr/bin/env node
// The package's command. An installed package runs its compiled JavaScript with plain node; a
// development checkout without a build runs the TypeScript sources through tsx.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const compiled = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
const source = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const args = existsSync(source) || !existsSync(compiled) ? ["--import", import.meta.resolve("tsx"), source] : [compiled];
const child = spawn(process.execPath, [...args, ...process.argv.slice(2)], { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
