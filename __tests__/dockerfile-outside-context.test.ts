import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Testing, TerraformStack } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { analyzeImages, type ImageAnalysis } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { cachedContextArchive, stageContextDirectory } from "../src/archive/context-archive.ts";
import { AppImages, BaseImage, ImageBuildEnvironment, LambdaImage } from "../src/index.ts";
import { repoTree, type RepoTree } from "./helpers/repo-tree.ts";
import { readZip } from "./helpers/zip.ts";

// A Dockerfile outside its build context (issue 22, item 2): Docker allows it (`docker build -f`
// names any file; BuildKit receives the Dockerfile apart from the context), and monorepos use it
// to build a package from its own directory with the Dockerfiles kept together elsewhere.
//
// The ignore file is looked up as Docker documents it
// (https://docs.docker.com/build/concepts/context/#filename-and-location): an ignore file named
// `<Dockerfile name>.dockerignore` in the same directory as the Dockerfile takes precedence over
// the `.dockerignore` at the root of the build context, whose rules are relative to the context.

let repo: RepoTree;
afterEach(() => repo?.cleanup());

const MANIFEST = [
  "project: demo",
  "stacks: { dev: { region: us-east-1 } }",
  "baseImages:",
  "  shared: { dockerfile: dockerfiles/Dockerfile.shared, context: packages/shared, packages: [packages/shared] }",
  "lambdas:",
  "  app: { dockerfile: dockerfiles/Dockerfile.app, context: packages/app }",
  "",
].join("\n");

function fixture(): RepoTree {
  return repoTree({
    "images.yaml": MANIFEST,
    "dockerfiles/Dockerfile.app": "FROM public.ecr.aws/lambda/python:3.12\nCOPY . ${LAMBDA_TASK_ROOT}/\nCMD [\"handler.handler\"]\n",
    "dockerfiles/Dockerfile.shared": "FROM public.ecr.aws/lambda/python:3.12\nCOPY . /tmp/shared/\nRUN pip install /tmp/shared\n",
    "packages/app/handler.py": "def handler(e, c):\n    return 1\n",
    "packages/app/notes.md": "notes\n",
    "packages/app/tests/test_handler.py": "",
    "packages/app/.dockerignore": "tests\n",
    "packages/shared/pyproject.toml": "[project]\nname = 'shared'\n",
    "packages/shared/shared/__init__.py": "",
  });
}

const analyze = () => analyzeImages(loadManifest(repo.manifest));
const files = (analysis: ImageAnalysis, name: string) => analysis.images.find((i) => i.spec.name === name)!.selection.files.map((f) => f.entry.path);

describe("a Dockerfile outside its build context (images.yaml)", () => {
  it("is accepted; the image holds its context's files and the Dockerfile, and the context's .dockerignore applies", async () => {
    repo = fixture();
    const analysis = await analyze();
    expect(files(analysis, "app")).toEqual(["dockerfiles/Dockerfile.app", "packages/app/.dockerignore", "packages/app/handler.py", "packages/app/notes.md"]);
  });

  it("the hash counts the Dockerfile: an edit rebuilds the image", async () => {
    repo = fixture();
    const before = (await analyze()).image("app", "lambda").hash;
    fs.appendFileSync(repo.file("dockerfiles/Dockerfile.app"), "ENV MODE=fast\n");
    expect((await analyze()).image("app", "lambda").hash).not.toBe(before);
  });

  it("<Dockerfile>.dockerignore beside the Dockerfile takes precedence over the context's .dockerignore, with rules relative to the context", async () => {
    repo = fixture();
    fs.writeFileSync(repo.file("dockerfiles/Dockerfile.app.dockerignore"), "*.md\n.dockerignore\n");
    const analysis = await analyze();
    // tests/ is back (only the context's .dockerignore left it out); notes.md is gone.
    expect(files(analysis, "app")).toEqual(["dockerfiles/Dockerfile.app", "packages/app/handler.py", "packages/app/tests/test_handler.py"]);
  });

  it("the context archive carries the Dockerfile apart from the context, and the buildspec builds that context with it", async () => {
    repo = fixture();
    const image = (await analyze()).image("app", "lambda");
    const archive = cachedContextArchive(path.join(path.dirname(repo.dir), "cache"), image, repo.dir);
    expect(readZip(archive.file).map((e) => e.name).sort()).toEqual([
      "context/.dockerignore",
      "context/handler.py",
      "context/notes.md",
      "dockerfile/Dockerfile.app",
      // Empty: BuildKit reads it instead of the context's .dockerignore, and the archive holds only selected files.
      "dockerfile/Dockerfile.app.dockerignore",
    ]);
    expect(image.buildspec).toMatch(/docker buildx build .* -f dockerfile\/Dockerfile\.app .* --load context\n/);
  });

  it("a Docker-built base's staged context holds the Dockerfile under a name its .dockerignore keeps out of COPY", async () => {
    repo = fixture();
    const image = (await analyze()).image("shared", "base");
    const dir = path.join(path.dirname(repo.dir), "staged");
    stageContextDirectory(repo.dir, image.selection.files, dir, image.spec.context, image.spec.dockerfile);
    const staged = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) => fs.statSync(path.join(dir, p)).isFile()).sort();
    expect(staged).toEqual([".dockerfile.lambda-images", ".dockerignore", "pyproject.toml", path.join("shared", "__init__.py")]);
    expect(fs.readFileSync(path.join(dir, ".dockerfile.lambda-images"), "utf8")).toBe(fs.readFileSync(repo.file("dockerfiles/Dockerfile.shared"), "utf8"));
    expect(fs.readFileSync(path.join(dir, ".dockerignore"), "utf8")).toBe(".dockerfile.lambda-images\n.dockerignore\n");
  });
});

describe("a Dockerfile outside its build context (constructs)", () => {
  it("is accepted, with the hashes images.yaml gives, and the Docker build names the staged Dockerfile", async () => {
    repo = fixture();
    const app = Testing.app();
    AppImages.configure(app, { cacheDir: path.join(path.dirname(repo.dir), "construct-cache"), writeSnapshot: false });
    const stack = new TerraformStack(app, "dev");
    new AwsProvider(stack, "aws", { region: "us-east-1" });
    new ImageBuildEnvironment(stack, "image-builds", { root: repo.dir });
    const base = new BaseImage(stack, "shared", { dockerfile: "dockerfiles/Dockerfile.shared", context: "packages/shared", packages: ["packages/shared"] });
    const lambda = new LambdaImage(stack, "app", { dockerfile: "dockerfiles/Dockerfile.app", context: "packages/app" });
    const analysis = await analyze();
    expect(lambda.hash).toBe(analysis.image("app", "lambda").hash);
    expect(base.hash).toBe(analysis.image("shared", "base").hash);
    const synthesized = JSON.parse(Testing.synth(stack)) as { resource: Record<string, Record<string, { build?: { dockerfile?: string } }>> };
    const dockerfiles = Object.values(synthesized.resource.docker_image ?? {}).map((r) => r.build?.dockerfile);
    expect(dockerfiles).toEqual([".dockerfile.lambda-images"]);
  });
});
