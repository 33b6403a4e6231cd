// README promises: the embedded example graph is what `graph` prints today.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { expect, it } from "vitest";

it("README embeds the example's current dependency graph", () => {
  const graph = execFileSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "graph", "--manifest", "example/images.yaml"], {
    encoding: "utf8",
  }).trim();
  const readme = fs.readFileSync("README.md", "utf8");
  const embedded = readme.match(/```mermaid\n([\s\S]*?)\n```/)?.[1];
  expect(embedded, "README has no mermaid block").toBeDefined();
  expect(embedded).toBe(graph);
});
