import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { StackView } from "./helpers/stack-view.ts";
import { flagValue, localExecArgv, synthExample, type SynthResult, type TfResource } from "./helpers/synth.ts";
import { allows, type PolicyStatement } from "./helpers/iam-eval.ts";

/** An ARN of the stack's account, as the synthesized policies write it. */
const ARN = (service: string, resource: string) =>
  `arn:\${data.aws_partition.partition.partition}:${service}:us-east-1:\${data.aws_caller_identity.account.account_id}:${resource}`;

/**
 * Manifest variants of the example: a base image built in CodeBuild, multi-platform bases, and
 * no Dockerfile pulling from public ECR. Each variant is a manifest next to the example's.
 */

let copy: ExampleCopy;
let original: string;
let mixedManifest: string;
const outputs: Record<string, SynthResult> = {};

/** Writes a variant of the example manifest (each `[from, to]` must occur) and synthesizes it. */
async function variant(name: string, edits: [string, string][]): Promise<SynthResult> {
  let text = original;
  for (const [from, to] of edits) {
    if (!text.includes(from)) throw new Error(`the example manifest no longer contains ${JSON.stringify(from)}`);
    text = text.replace(from, to);
  }
  const manifest = path.join(copy.dir, `${name}.yaml`);
  fs.writeFileSync(manifest, text);
  return synthExample(copy.dir, path.join(path.dirname(copy.dir), `out-${name}`), { manifest });
}

const LABEL_BASE = "  receipt-label:\n    dockerfile: dockerfiles/Dockerfile.receipt_label\n";
const DYNAMO_PLATFORMS = "    packages: [receipt_dynamo]\n    platforms: [linux/arm64]\n";

beforeAll(async () => {
  copy = copyExample({ prefix: "synth-variants-" });
  original = fs.readFileSync(copy.manifest, "utf8");
  outputs.codebuild = await variant("codebuild-base", [[LABEL_BASE, `${LABEL_BASE}    builder: codebuild\n`]]);
  const dynamoMulti: [string, string] = [DYNAMO_PLATFORMS, "    packages: [receipt_dynamo]\n    platforms: [linux/arm64, linux/amd64]\n"];
  const amd64Lambdas: [string, string][] = [
    ["    baseImage: receipt-dynamo\n    timeout: 60\n", "    baseImage: receipt-dynamo\n    platform: linux/amd64\n    timeout: 60\n"],
    ["    baseImage: receipt-label\n    memorySize: 512\n", "    baseImage: receipt-label\n    platform: linux/amd64\n    memorySize: 512\n"],
  ];
  outputs.multi = await variant("multi-platform-docker", [
    dynamoMulti,
    [LABEL_BASE, `${LABEL_BASE}    platforms: [linux/arm64, linux/amd64]\n`],
    ...amd64Lambdas,
  ]);
  outputs.multiCodebuild = await variant("multi-platform-codebuild", [
    [DYNAMO_PLATFORMS, "    packages: [receipt_dynamo]\n    builder: codebuild\n    platforms: [linux/arm64, linux/amd64]\n"],
    [LABEL_BASE, `${LABEL_BASE}    builder: codebuild\n    platforms: [linux/arm64, linux/amd64]\n`],
    ...amd64Lambdas,
  ]);
  mixedManifest = path.join(copy.dir, "multi-platform-mixed.yaml");
  fs.writeFileSync(mixedManifest, original.replace(DYNAMO_PLATFORMS, dynamoMulti[1]).replace(LABEL_BASE, `${LABEL_BASE}    builder: codebuild\n    platforms: [linux/arm64, linux/amd64]\n`));
  const withoutStandalone = original.slice(0, original.indexOf("  # The same handler as create-labels, built the original way"));
  outputs.private = await variant("no-public-ecr", [[original, withoutStandalone]]);
  expect(parse(withoutStandalone).lambdas["create-labels-standalone"]).toBeUndefined();
});
afterAll(() => copy.cleanup());

const view = (variantName: string, stack: string) => StackView.of(outputs[variantName]!.outdir, stack, outputs[variantName]!.stacks[stack]!);
const hashOf = (variantName: string, name: string, kind: "lambda" | "base") => outputs[variantName]!.analysis.image(name, kind).hash;
const tagOf = (hash: string) => `sha-${hash.slice(0, 12)}`;
const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

function repo(v: StackView, name: string): [string, TfResource] {
  return v.one("aws_ecr_repository", (r) => r.name === name);
}
function repoUrl(v: StackView, name: string): string {
  return StackView.ref("aws_ecr_repository", repo(v, name)[0], "repository_url");
}
/** The build (terraform_data) whose --repository-uri is that repository's. */
function buildOf(v: StackView, repositoryName: string): [string, TfResource, string[]] {
  const url = repoUrl(v, repositoryName);
  const [id, r] = v.one("terraform_data", (t) => flagValue(localExecArgv(t.provisioner[0]["local-exec"].command), "--repository-uri") === url);
  return [id, r, localExecArgv(r.provisioner[0]["local-exec"].command as string)];
}
function lambdaFn(v: StackView, name: string): TfResource {
  return v.one("aws_lambda_function", (r) => r.function_name === `portfolio-${name}-${v.name}`)[1];
}

describe("a base image with builder: codebuild", () => {
  it.each(["dev", "prod"])("%s: is built in CodeBuild from its own context archive, FROM its Docker-built parent", (stack) => {
    const v = view("codebuild", stack);
    const hash = hashOf("codebuild", "receipt-label", "base");
    // No Docker resources for it any more; receipt-dynamo still has them.
    expect(v.all("docker_image").map(([, r]) => r.name)).toEqual([`${repoUrl(v, `portfolio-base-receipt-dynamo-${stack}`)}:${stack === "dev" ? "stable" : tagOf(hashOf("codebuild", "receipt-dynamo", "base"))}`]);
    const [, project] = v.one("aws_codebuild_project", (p) => p.name === `portfolio-base-receipt-label-${stack}`);
    expect(project.environment).toMatchObject({ type: "ARM_CONTAINER", privileged_mode: true });
    const [, object] = v.one("aws_s3_object", (o) => String(o.key).startsWith("contexts/base-receipt-label/"));
    expect(object.key).toBe(`contexts/base-receipt-label/${hash}.zip`);
    const [, build, argv] = buildOf(v, `portfolio-base-receipt-label-${stack}`);
    const tag = stack === "dev" ? "stable" : tagOf(hash);
    expect(flagValue(argv, "--image-tag")).toBe(tag);
    const [dynamoImageId, dynamoImage] = v.one("docker_image", () => true);
    expect(flagValue(argv, "--base-image-uri")).toBe(dynamoImage.name);
    expect(build.triggers_replace).toMatchObject({ content_hash: hash, base_image_uri: dynamoImage.name });
    const [dynamoPushId] = v.one("docker_registry_image", (p) => p.name === StackView.ref("docker_image", dynamoImageId, "name"));
    expect(build.depends_on).toContain(`docker_registry_image.${dynamoPushId}`);
    // A stable tag already exists when the content changed: the runner must build anyway.
    if (stack === "dev") expect(argv).toContain("--force");
    else expect(argv).not.toContain("--force");
    const [, repository] = repo(v, `portfolio-base-receipt-label-${stack}`);
    // Only the tags that move are mutable; a content tag pushed to a static-tag stack stays put.
    expect(repository.image_tag_mutability).toBe("IMMUTABLE_WITH_EXCLUSION");
    expect(repository.image_tag_mutability_exclusion_filter.map((f: { filter: string }) => f.filter)).toEqual(stack === "dev" ? ["cache", "stable", "arm64-stable", "amd64-stable"] : ["cache"]);
  });

  it.each(["dev", "prod"])("%s: its Lambdas are built FROM it and wait for its build", (stack) => {
    const v = view("codebuild", stack);
    const [labelBuildId] = buildOf(v, `portfolio-base-receipt-label-${stack}`);
    const labelTag = stack === "dev" ? "stable" : tagOf(hashOf("codebuild", "receipt-label", "base"));
    for (const name of ["create-labels", "upload-images"]) {
      const [buildId, build, argv] = buildOf(v, `portfolio-${name}-${stack}`);
      expect(flagValue(argv, "--base-image-uri")).toBe(`${repoUrl(v, `portfolio-base-receipt-label-${stack}`)}:${labelTag}`);
      expect(build.triggers_replace.base_image_uri).toBe(`${repoUrl(v, `portfolio-base-receipt-label-${stack}`)}:${labelTag}`);
      expect(build.depends_on).toContain(`terraform_data.${labelBuildId}`);
      expect(lambdaFn(v, name).depends_on).toContain(`terraform_data.${buildId}`);
    }
  });

  it("the CodeBuild role may push to its repository and write its build logs", () => {
    const v = view("codebuild", "prod");
    const [, policy] = v.one("aws_iam_role_policy", (p) => p.name === "build-stack-images");
    const statements = JSON.parse(policy.policy as string).Statement as PolicyStatement[];
    expect(allows(statements, "ecr:PutImage", ARN("ecr", "repository/portfolio-base-receipt-label-prod"))).toBe(true);
    // The Docker-built parent is only pulled: its repository matches the stack's pattern, and a Deny keeps pushes out.
    expect(allows(statements, "ecr:PutImage", ARN("ecr", "repository/portfolio-base-receipt-dynamo-prod"))).toBe(false);
    expect(allows(statements, "ecr:BatchGetImage", ARN("ecr", "repository/portfolio-base-receipt-dynamo-prod"))).toBe(true);
    expect(allows(statements, "logs:PutLogEvents", ARN("logs", "log-group:/aws/codebuild/portfolio-base-receipt-label-prod:log-stream:b"))).toBe(true);
  });
});

describe("multi-platform base images", () => {
  /** The base's docker_image resources as [platform, name, resource id], sorted by platform. */
  const dockerImages = (v: StackView, base: string) => {
    const url = repoUrl(v, `portfolio-base-${base}-prod`);
    return v
      .all("docker_image")
      .filter(([, r]) => String(r.name).startsWith(`${url}:`))
      .map(([id, r]) => [r.build.platform as string, r.name as string, id] as const)
      .sort();
  };

  it("a Docker-built base builds and pushes every platform under <arch>-<tag>, all with the content-hash trigger", () => {
    const v = view("multi", "prod");
    const hash = hashOf("multi", "receipt-dynamo", "base");
    const url = repoUrl(v, "portfolio-base-receipt-dynamo-prod");
    expect(dockerImages(v, "receipt-dynamo").map(([p, n]) => [p, n])).toEqual([
      ["linux/amd64", `${url}:amd64-${tagOf(hash)}`],
      ["linux/arm64", `${url}:arm64-${tagOf(hash)}`],
    ]);
    for (const [, , id] of dockerImages(v, "receipt-dynamo")) {
      expect(v.get("docker_image", id).triggers).toEqual({ content_hash: hash });
      const [, push] = v.one("docker_registry_image", (p) => p.name === StackView.ref("docker_image", id, "name"));
      expect(push).toMatchObject({ keep_remotely: true, triggers: { content_hash: hash } });
    }
  });

  it("a chained Docker-built base builds each platform FROM its parent's image of the same platform", () => {
    const v = view("multi", "prod");
    const parents = new Map(dockerImages(v, "receipt-dynamo").map(([p, n, id]) => [p, { n, id }]));
    const children = dockerImages(v, "receipt-label");
    expect(children.map(([p]) => p)).toEqual(["linux/amd64", "linux/arm64"]);
    for (const [platform, , id] of children) {
      const image = v.get("docker_image", id);
      expect(image.build.build_args).toEqual({ BASE_IMAGE_URI: parents.get(platform)!.n });
      const [parentPush] = v.one("docker_registry_image", (p) => p.name === StackView.ref("docker_image", parents.get(platform)!.id, "name"));
      expect(image.depends_on).toContain(`docker_registry_image.${parentPush}`);
    }
  });

  it("a Lambda on a multi-platform Docker base is built FROM the base's image of its own platform", () => {
    const v = view("multi", "prod");
    const [, , argv] = buildOf(v, "portfolio-sync-dynamo-prod");
    const url = repoUrl(v, "portfolio-base-receipt-dynamo-prod");
    expect(flagValue(argv, "--base-image-uri")).toBe(`${url}:amd64-${tagOf(hashOf("multi", "receipt-dynamo", "base"))}`);
    expect(lambdaFn(v, "sync-dynamo").architectures).toEqual(["x86_64"]);
    const [, project] = v.one("aws_codebuild_project", (p) => p.name === "portfolio-sync-dynamo-prod");
    expect(project.environment).toMatchObject({ type: "LINUX_CONTAINER", image: "aws/codebuild/standard:7.0" });
    const [, , uploadArgv] = buildOf(v, "portfolio-upload-images-prod");
    expect(flagValue(uploadArgv, "--base-image-uri")).toMatch(/:amd64-sha-[0-9a-f]{12}$/);
  });

  // Each platform is built natively, so no build needs QEMU (tonistiigi/binfmt) or a BuildKit
  // container (moby/buildkit), both pulled from Docker Hub: arm64 on ARM_CONTAINER, amd64 on
  // LINUX_CONTAINER (https://docs.aws.amazon.com/codebuild/latest/APIReference/API_ProjectEnvironment.html,
  // https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-available.html). Then a
  // build joins the two into the index <tag> with `docker buildx imagetools create`, a registry
  // operation (https://docs.docker.com/reference/cli/docker/buildx/imagetools/create/).
  it("CodeBuild-built bases build each platform on its own architecture's machine, then join them into one index, chained by the index tag", () => {
    const v = view("multiCodebuild", "prod");
    expect(v.all("docker_image")).toEqual([]);
    const builds = (base: string) => {
      const url = repoUrl(v, `portfolio-base-${base}-prod`);
      return new Map(
        v
          .all("terraform_data")
          .map(([id, r]) => [id, r, localExecArgv(r.provisioner[0]["local-exec"].command as string)] as const)
          .filter(([, , argv]) => flagValue(argv, "--repository-uri") === url)
          .map(([id, r, argv]) => [flagValue(argv, "--image-tag")!, { id, r, argv }]),
      );
    };
    for (const base of ["receipt-dynamo", "receipt-label"]) {
      const tag = tagOf(hashOf("multiCodebuild", base, "base"));
      const byTag = builds(base);
      expect([...byTag.keys()].sort()).toEqual([`amd64-${tag}`, `arm64-${tag}`, tag]);
      for (const [arch, type, image] of [
        ["arm64", "ARM_CONTAINER", "aws/codebuild/amazonlinux-aarch64-standard:3.0"],
        ["amd64", "LINUX_CONTAINER", "aws/codebuild/standard:7.0"],
      ] as const) {
        const { r: trigger, argv } = byTag.get(`${arch}-${tag}`)!;
        const [, project] = v.deref(flagValue(argv, "--project"), "aws_codebuild_project", "name");
        expect(project.name).toBe(`portfolio-base-${base}-prod-${arch}`);
        expect(project.environment).toMatchObject({ type, image, privileged_mode: true });
        expect(project.environment.environment_variable).toContainEqual({ name: "TARGET_PLATFORM", value: `linux/${arch}` });
        const buildspec = project.source.buildspec as string;
        expect(buildspec).toContain('--platform "$TARGET_PLATFORM"');
        expect(buildspec).not.toMatch(/binfmt|buildx create|moby\/buildkit/);
        expect(trigger.triggers_replace).toMatchObject({ content_hash: hashOf("multiCodebuild", base, "base") });
      }
      const join = byTag.get(tag)!;
      const [, joinProject] = v.deref(flagValue(join.argv, "--project"), "aws_codebuild_project", "name");
      expect(joinProject.name).toBe(`portfolio-base-${base}-prod`);
      const joinCommands = (parse(joinProject.source.buildspec as string) as { phases: Record<string, { commands: string[] }> }).phases.build!.commands;
      expect(joinCommands).toEqual(['docker buildx imagetools create -t "$REPOSITORY_URI:$IMAGE_TAG" "$REPOSITORY_URI:arm64-$IMAGE_TAG" "$REPOSITORY_URI:amd64-$IMAGE_TAG"']);
      // The join runs after both platforms' images are pushed, and again whenever they are rebuilt.
      for (const arch of ["arm64", "amd64"]) expect(join.r.depends_on).toContain(`terraform_data.${byTag.get(`${arch}-${tag}`)!.id}`);
      expect(join.r.triggers_replace).toMatchObject({ content_hash: hashOf("multiCodebuild", base, "base") });
    }
    // The chained base builds each platform FROM the parent's index, after the parent's join.
    const dynamoTag = tagOf(hashOf("multiCodebuild", "receipt-dynamo", "base"));
    const dynamoJoin = builds("receipt-dynamo").get(dynamoTag)!;
    const labelTag = tagOf(hashOf("multiCodebuild", "receipt-label", "base"));
    for (const arch of ["arm64", "amd64"]) {
      const { r, argv } = builds("receipt-label").get(`${arch}-${labelTag}`)!;
      expect(flagValue(argv, "--base-image-uri")).toBe(`${repoUrl(v, "portfolio-base-receipt-dynamo-prod")}:${dynamoTag}`);
      expect(r.depends_on).toContain(`terraform_data.${dynamoJoin.id}`);
    }
    const [, , uploadArgv] = buildOf(v, "portfolio-upload-images-prod");
    expect(flagValue(uploadArgv, "--base-image-uri")).toBe(`${repoUrl(v, "portfolio-base-receipt-label-prod")}:${labelTag}`);
    expect(lambdaFn(v, "upload-images").architectures).toEqual(["x86_64"]);
  });

  it("the per-platform projects of a CodeBuild-built base may push to its repository and write their logs", () => {
    const v = view("multiCodebuild", "prod");
    const [, policy] = v.one("aws_iam_role_policy", (p) => p.name === "build-stack-images");
    const statements = JSON.parse(policy.policy as string).Statement as PolicyStatement[];
    expect(allows(statements, "ecr:PutImage", ARN("ecr", "repository/portfolio-base-receipt-label-prod"))).toBe(true);
    for (const suffix of ["", "-arm64", "-amd64"]) {
      expect(allows(statements, "logs:PutLogEvents", ARN("logs", `log-group:/aws/codebuild/portfolio-base-receipt-label-prod${suffix}:log-stream:b`)), suffix).toBe(true);
    }
  });

  it("a multi-platform CodeBuild base FROM a multi-platform Docker base builds each platform FROM the parent's image of that platform", async () => {
    const outdir = path.join(path.dirname(copy.dir), "out-mixed");
    const { stacks, analysis } = await synthExample(copy.dir, outdir, { manifest: mixedManifest });
    const v = StackView.of(outdir, "prod", stacks.prod!);
    const dynamoTag = tagOf(analysis.image("receipt-dynamo", "base").hash);
    const labelTag = tagOf(analysis.image("receipt-label", "base").hash);
    const dynamoUrl = repoUrl(v, "portfolio-base-receipt-dynamo-prod");
    for (const arch of ["arm64", "amd64"]) {
      const [, , argv] = v
        .all("terraform_data")
        .map(([id, r]) => [id, r, localExecArgv(r.provisioner[0]["local-exec"].command as string)] as const)
        .find(([, , a]) => flagValue(a, "--image-tag") === `${arch}-${labelTag}`)!;
      expect(flagValue(argv, "--base-image-uri")).toBe(`${dynamoUrl}:${arch}-${dynamoTag}`);
    }
  });
});

describe("no CodeBuild-built Dockerfile pulls from public ECR", () => {
  it.each(["dev", "prod"])("%s: the only Resource \"*\" action is ecr:GetAuthorizationToken and no buildspec logs in to public ECR", (stack) => {
    const v = view("private", stack);
    expect(v.all("aws_lambda_function")).toHaveLength(3);
    const [, policy] = v.one("aws_iam_role_policy", (p) => p.name === "build-stack-images");
    const statements = JSON.parse(policy.policy as string).Statement as { Action: string | string[]; Resource: string | string[] }[];
    const star = statements.filter((s) => asArray(s.Resource).includes("*"));
    expect(star.flatMap((s) => asArray(s.Action))).toEqual(["ecr:GetAuthorizationToken"]);
    for (const [, project] of v.all("aws_codebuild_project")) expect(project.source.buildspec).not.toContain("public.ecr.aws");
  });
});
