import { afterEach, describe, expect, it } from "vitest";
import { analyzeImages } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { repoTree, type RepoTree } from "./helpers/repo-tree.ts";

// One analysis shares its walk, its .dockerignore matchers and what each COPY source reaches
// between images. What an image selects must still depend only on that image: its build
// context, its ignore file, and the packages its own bases provide (all of them, up the chain).

let repo: RepoTree;
afterEach(() => repo?.cleanup());

const FROM_BASE = "ARG BASE_IMAGE_URI\nFROM ${BASE_IMAGE_URI:-public.ecr.aws/lambda/python:3.12}\n";
const FROM_PUBLIC = "FROM public.ecr.aws/lambda/python:3.12\n";

function manifest(lines: string[]): string {
  return ["project: demo", "stacks: { dev: { region: us-east-1 } }", ...lines, ""].join("\n");
}

/** Each image's selected files (root-relative), by name, analyzed together. */
async function selections(): Promise<Record<string, string[]>> {
  const analysis = await analyzeImages(loadManifest(repo.manifest));
  return Object.fromEntries(analysis.images.map((i) => [i.spec.name, i.selection.files.map((f) => f.entry.path)]));
}

/** The same, each image analyzed in an analysis of its own (its bases too): nothing shared with other images. */
async function alone(names: string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const full = loadManifest(repo.manifest);
  for (const name of names) {
    const lambdas = full.lambdas.filter((l) => l.name === name);
    const analysis = await analyzeImages({ ...full, lambdas });
    const image = analysis.images.find((i) => i.spec.name === name)!;
    out[name] = image.selection.files.map((f) => f.entry.path);
  }
  return out;
}

const PACKAGES = {
  "pkg0/pyproject.toml": "[project]\nname = 'pkg0'\n",
  "pkg0/pkg0/__init__.py": "",
  "pkg1/pyproject.toml": "[project]\nname = 'pkg1'\n",
  "pkg1/pkg1/__init__.py": "",
  "d/Dockerfile.b0": `${FROM_PUBLIC}COPY pkg0/ /tmp/pkg0/\n`,
  // Chained on b0, installing only its own package: pkg0 comes from b0.
  "d/Dockerfile.b1": `${FROM_BASE}COPY pkg1/ /tmp/pkg1/\n`,
};
/** The manifest lines of PACKAGES' two base images: b1 FROM b0. */
const CHAINED_BASES = [
  "baseImages:",
  "  b0: { dockerfile: d/Dockerfile.b0, packages: [pkg0] }",
  "  b1: { dockerfile: d/Dockerfile.b1, packages: [pkg1], baseImage: b0 }",
];

describe("a chained base image passes on its parent's packages too", () => {
  it("a Lambda on the chained base leaves out the grandparent's package, from COPY . and from include globs", async () => {
    repo = repoTree({
      ...PACKAGES,
      "images.yaml": manifest([
        ...CHAINED_BASES,
        "lambdas:",
        "  all: { dockerfile: lam/Dockerfile, baseImage: b1 }",
        // Globs that reach into the packages through a wildcard, and from a literal prefix inside them.
        "  globbed: { dockerfile: lam/Dockerfile.handler, baseImage: b1, include: ['**/*.py', '**/*.toml', 'pkg0/*.toml', 'pkg1/pkg1/*.py'] }",
      ]),
      "lam/Dockerfile": `${FROM_BASE}COPY . /app/\n`,
      "lam/Dockerfile.handler": `${FROM_BASE}COPY lam/handler.py /app/\n`,
      "lam/handler.py": "def handler(e, c):\n    return 1\n",
      "lam/pyproject.toml": "",
    });
    const s = await selections();
    for (const name of ["all", "globbed"]) {
      expect(s[name]).toContain("lam/handler.py");
      expect(s[name]!.filter((p) => p.startsWith("pkg0/") || p.startsWith("pkg1/")), `${name} selects no base package`).toEqual([]);
    }
    expect(s.globbed).toEqual(["lam/Dockerfile.handler", "lam/handler.py", "lam/pyproject.toml"]);
  });

  it("a Lambda on the chained base that COPYs the grandparent's package is an error naming the line and the fix", async () => {
    repo = repoTree({
      ...PACKAGES,
      "images.yaml": manifest([
        ...CHAINED_BASES,
        "lambdas:",
        "  lam: { dockerfile: lam/Dockerfile, baseImage: b1 }",
      ]),
      "lam/Dockerfile": `${FROM_BASE}COPY pkg0/ /tmp/pkg0/\nCOPY lam/handler.py /app/\n`,
      "lam/handler.py": "",
    });
    await expect(selections()).rejects.toThrow(
      "lam/Dockerfile:3: COPY pkg0 reads pkg0, which lambda image lam leaves out because its base image b1 already installs it. Fix: remove this COPY from lam/Dockerfile",
    );
  });
});

describe("images sharing a walk select what each would alone", () => {
  it("the same COPY source with different left-out packages: on a base image, and standalone", async () => {
    // Both images COPY libs/ (their Dockerfiles lie outside it, so nothing else tells them apart);
    // the one on b0 leaves out libs/pkg0, which b0 installs.
    repo = repoTree({
      "images.yaml": manifest([
        "baseImages:",
        "  b0: { dockerfile: d/Dockerfile.b0, packages: [libs/pkg0] }",
        "lambdas:",
        "  on-base: { dockerfile: d/Dockerfile.on-base, baseImage: b0 }",
        "  standalone: { dockerfile: d/Dockerfile.standalone }",
        "  on-base-again: { dockerfile: d/Dockerfile.on-base, baseImage: b0 }",
      ]),
      "d/Dockerfile.b0": `${FROM_PUBLIC}COPY libs/pkg0/ /tmp/pkg0/\n`,
      "d/Dockerfile.on-base": `${FROM_BASE}COPY libs/ /app/libs/\n`,
      "d/Dockerfile.standalone": `${FROM_PUBLIC}COPY libs/ /app/libs/\n`,
      "libs/pkg0/pkg0/__init__.py": "",
      "libs/util/util.py": "",
    });
    const s = await selections();
    expect(s.standalone).toEqual(["d/Dockerfile.standalone", "libs/pkg0/pkg0/__init__.py", "libs/util/util.py"]);
    expect(s["on-base"]).toEqual(["d/Dockerfile.on-base", "libs/util/util.py"]);
    expect(s["on-base-again"]).toEqual(s["on-base"]);
    expect(s).toMatchObject(await alone(["on-base", "standalone", "on-base-again"]));
  });

  it("two build contexts without any ignore file: each selects its own context", async () => {
    repo = repoTree({
      "images.yaml": manifest(["lambdas:", "  a: { dockerfile: svc/a/Dockerfile, context: svc/a }", "  b: { dockerfile: svc/b/Dockerfile, context: svc/b }"]),
      "svc/a/Dockerfile": `${FROM_PUBLIC}COPY . /app/\n`,
      "svc/a/handler.py": "",
      "svc/b/Dockerfile": `${FROM_PUBLIC}COPY . /app/\n`,
      "svc/b/handler.py": "",
    });
    expect(await selections()).toEqual({ a: ["svc/a/Dockerfile", "svc/a/handler.py"], b: ["svc/b/Dockerfile", "svc/b/handler.py"] });
  });

  it("one Dockerfile and its <Dockerfile>.dockerignore used with two contexts: the rules are relative to each image's context", async () => {
    // Both images copy svc/s3/lib (written from each context), and share the ignore file beside
    // the Dockerfile; its rule `lib/*.md` means svc/lib/*.md in context svc, svc/s3/lib/*.md in svc/s3.
    repo = repoTree({
      "images.yaml": manifest([
        "lambdas:",
        "  wide: { dockerfile: svc/s3/Dockerfile, context: svc, buildArgs: { LIB: s3/lib } }",
        "  narrow: { dockerfile: svc/s3/Dockerfile, context: svc/s3, buildArgs: { LIB: lib } }",
      ]),
      "svc/s3/Dockerfile": `${FROM_PUBLIC}ARG LIB\nCOPY \${LIB}/ /app/lib/\n`,
      "svc/s3/Dockerfile.dockerignore": "lib/*.md\n",
      "svc/s3/lib/code.py": "",
      "svc/s3/lib/notes.md": "",
    });
    const expected = { wide: ["svc/s3/Dockerfile", "svc/s3/lib/code.py", "svc/s3/lib/notes.md"], narrow: ["svc/s3/Dockerfile", "svc/s3/lib/code.py"] };
    expect(await selections()).toEqual(expected);
    expect(await alone(["narrow", "wide"])).toEqual(expected);
  });
});

describe("COPY of the whole context on a base image (issue 22, item 5)", () => {
  it("leaves the base's packages out, and says so in a warning naming them and the line", async () => {
    repo = repoTree({
      ...PACKAGES,
      "images.yaml": manifest([
        ...CHAINED_BASES,
        "lambdas:",
        "  app: { dockerfile: lam/Dockerfile, baseImage: b1 }",
        "  plain: { dockerfile: lam/Dockerfile.handler, baseImage: b1 }",
      ]),
      "lam/Dockerfile": `${FROM_BASE}COPY . /app/\n`,
      "lam/Dockerfile.handler": `${FROM_BASE}COPY lam/handler.py /app/\n`,
      "lam/handler.py": "",
    });
    const analysis = await analyzeImages(loadManifest(repo.manifest));
    expect(analysis.image("app", "lambda").warnings).toEqual([
      "lam/Dockerfile:3: COPY . leaves out pkg0/, pkg1/: base image b1 already installs them, so lambda image app gets them from there, not from this COPY",
    ]);
    expect(analysis.image("app", "lambda").selection.files.map((f) => f.entry.path).filter((p) => p.startsWith("pkg"))).toEqual([]);
    // Nothing to say where no package was in reach.
    expect(analysis.image("plain", "lambda").warnings).toEqual([]);
  });
});
