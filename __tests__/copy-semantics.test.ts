import { afterEach, describe, expect, it } from "vitest";
import { analyzeImages } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { repoTree, type RepoTree } from "./helpers/repo-tree.ts";

// What BuildKit copies, so that a change elsewhere rebuilds nothing (issue 22, item 6).

let repo: RepoTree;
afterEach(() => repo?.cleanup());

const FROM = "FROM public.ecr.aws/lambda/python:3.12";

async function selected(dockerfile: string, files: Record<string, string>): Promise<string[]> {
  repo = repoTree({
    "images.yaml": ["project: demo", "stacks: { dev: { region: us-east-1 } }", "lambdas:", "  fn: { dockerfile: Dockerfile }", ""].join("\n"),
    Dockerfile: dockerfile,
    ...files,
  });
  const analysis = await analyzeImages(loadManifest(repo.manifest));
  return analysis.image("fn", "lambda").selection.files.map((f) => f.entry.path).filter((p) => p !== "Dockerfile");
}

describe("a COPY source with **", () => {
  // The Dockerfile reference (COPY, https://docs.docker.com/reference/dockerfile/#copy): sources
  // "may contain wildcards and matching will be done using Go's filepath.Match rules", in which
  // `**` is two `*`s, neither crossing `/`. BuildKit resolves sources so: tonistiigi/fsutil
  // copy/copy.go, resolveWildcards, filepath.Match(comp, rel) over the path below the first
  // wildcard. (.dockerignore rules and manifest include globs do give `**` any depth.)
  it("matches one directory level, as Go's filepath.Match does", async () => {
    const files = await selected(`${FROM}\nCOPY src/**/*.py /app/\n`, {
      "src/top.py": "",
      "src/a/one.py": "",
      "src/a/b/two.py": "",
      "src/a/notes.txt": "",
    });
    expect(files).toEqual(["src/a/one.py"]);
  });

  it("a directory it matches comes whole", async () => {
    const files = await selected(`${FROM}\nCOPY pkg**/ /app/\n`, { "pkg1/a/b.py": "", "pkg1/c.py": "", "other/d.py": "" });
    expect(files).toEqual(["pkg1/a/b.py", "pkg1/c.py"]);
  });
});

describe("stages the target does not need", () => {
  // BuildKit builds only the stages the target stage (here the last) depends on, through FROM,
  // COPY --from and RUN --mount=from=: "BuildKit only builds the stages that the target stage
  // depends on" (https://docs.docker.com/build/building/multi-stage/#differences-between-legacy-builder-and-buildkit).
  const DOCKERFILE = [
    `${FROM} AS docs`,
    "COPY docs/ /docs/",
    `${FROM} AS builder`,
    "COPY src/ /src/",
    `${FROM} AS vendored`,
    "COPY vendor/ /vendor/",
    `${FROM} AS deps`,
    "COPY requirements.txt /req.txt",
    "FROM deps",
    "COPY --from=builder /src /app",
    "RUN --mount=type=bind,from=vendored,source=/vendor,target=/v true",
    "COPY handler.py /app/",
    "",
  ].join("\n");
  const FILES = { "docs/index.md": "", "src/lib.py": "", "vendor/v.py": "", "requirements.txt": "", "handler.py": "" };

  it("are not built, so what they COPY is not part of the image", async () => {
    expect(await selected(DOCKERFILE, FILES)).toEqual(["handler.py", "requirements.txt", "src/lib.py", "vendor/v.py"]);
  });

  it("a stage referenced by index counts; one referenced through a variable makes every stage count", async () => {
    expect(await selected(DOCKERFILE.replace("COPY --from=builder", "COPY --from=1"), FILES)).toEqual(["handler.py", "requirements.txt", "src/lib.py", "vendor/v.py"]);
    repo.cleanup();
    const dynamic = `ARG FROM_STAGE=vendored\n${DOCKERFILE.replace("from=vendored", "from=${FROM_STAGE}")}`;
    expect(await selected(dynamic, FILES)).toEqual(["docs/index.md", "handler.py", "requirements.txt", "src/lib.py", "vendor/v.py"]);
  });
});
