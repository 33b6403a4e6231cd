// Plugs the CodeBuild stand-in into the runner's test-only fake of the CodeBuild/ECR/Logs APIs
// (__tests__/fake-aws): StartBuild really executes the project's buildspec against the source zip
// in S3, the fake reports its real phases and log lines to the runner's BatchGetBuilds and
// GetLogEvents, StopBuild kills it, and DescribeImages asks the local registry.
import {
  FakeAwsError,
  FAKE_ACCOUNT,
  startFakeCodeBuild,
  type BuildControls,
  type FakeAws,
  type FakeBuild,
  type FakeModel,
  type FinalStatus,
} from "../../__tests__/fake-aws/index.ts";
import type { BuildRun, Harness } from "./harness.ts";
import type { PhaseRecord } from "./codebuild.ts";

export interface StandInProject {
  /** The project's inline buildspec (aws_codebuild_project.source.buildspec). */
  buildspec: string;
  /** Project environment variables (overridden by StartBuild's). */
  env?: Record<string, string>;
}

export interface FakeCodeBuild {
  fake: FakeAws;
  model: FakeModel;
  /** Every build the stand-in ran, in start order, resolved when it ends. */
  runs: Promise<BuildRun>[];
  close(): Promise<void>;
}

/** "bucket/key/with/slashes" (CodeBuild's S3 source location) → parts. */
function splitLocation(location: string): { bucket: string; key: string } {
  const i = location.indexOf("/");
  if (i <= 0) throw new Error(`S3 source location "${location}" is not bucket/key`);
  return { bucket: location.slice(0, i), key: location.slice(i + 1) };
}

const seconds = (d: Date) => d.getTime() / 1000;

export async function startFakeCodeBuildWithStandIn(
  h: Harness,
  projects: (projectName: string) => StandInProject | undefined,
  log: (line: string) => void = () => {},
): Promise<FakeCodeBuild> {
  const runs: Promise<BuildRun>[] = [];

  const onBuildStarted = (build: FakeBuild, controls: BuildControls) => {
    const project = projects(build.projectName);
    if (!project) {
      controls.appendLog(`e2e stand-in: no project ${build.projectName}`);
      controls.finish("FAULT", { statusCode: "CLIENT_ERROR", message: `no project ${build.projectName}` });
      return;
    }
    const env: Record<string, string> = { ...(project.env ?? {}) };
    for (const v of build.environment.environmentVariables) env[v.name] = v.value;
    const { bucket, key } = splitLocation(build.source.location ?? "");
    const ac = new AbortController();
    // StopBuild (handled by the fake) marks the build complete: stop the real work too.
    const watch = setInterval(() => {
      if (build.buildComplete && !ac.signal.aborted) ac.abort();
    }, 200);

    const mirrorEnd = (p: PhaseRecord) => {
      const fp = build.phases[build.phases.length - 1];
      if (!fp || fp.phaseType !== p.phaseType || fp.endTime !== undefined) return;
      fp.phaseStatus = p.phaseStatus;
      fp.endTime = seconds(p.endTime!);
      fp.durationInSeconds = p.durationInSeconds;
      if (p.contexts) fp.contexts = p.contexts;
    };
    log(`e2e: StartBuild ${build.id} (${env.REPOSITORY_URI ?? "?"}:${env.IMAGE_TAG ?? "?"})`);
    const run = h
      .runBuild({
        name: build.projectName,
        buildspec: project.buildspec,
        bucket,
        key,
        env,
        signal: ac.signal,
        hooks: {
          phaseStarted(p) {
            if (build.buildComplete) return;
            // The fake already put the build in SUBMITTED; COMPLETED comes with finish().
            if (p.phaseType === "SUBMITTED" || p.phaseType === "COMPLETED") return;
            controls.enterPhase(p.phaseType);
          },
          phaseEnded(p) {
            if (!build.buildComplete) mirrorEnd(p);
          },
          log(line) {
            controls.appendLog(line);
          },
        },
      })
      .then((r) => {
        clearInterval(watch);
        if (!build.buildComplete) {
          const failed = r.phases.find((p) => p.phaseStatus && p.phaseStatus !== "SUCCEEDED");
          controls.finish(r.buildStatus as FinalStatus, failed?.contexts?.[0]);
        }
        log(`e2e: build ${build.id} ${r.buildStatus} in ${r.seconds.toFixed(1)}s`);
        return r;
      })
      .catch((err) => {
        clearInterval(watch);
        controls.appendLog(`e2e stand-in crashed: ${(err as Error).message}`);
        controls.finish("FAULT", { statusCode: "CLIENT_ERROR", message: (err as Error).message });
        throw err;
      });
    runs.push(run);
    // Not awaited: StartBuild answers at once, the runner polls.
  };

  /** ECR DescribeImages answered from the registry: HEAD /v2/<repo>/manifests/<tag>. */
  const describeImages = async (input: { repositoryName: string; registryId?: string; imageIds?: { imageTag?: string; imageDigest?: string }[] }) => {
    const registryId = input.registryId ?? FAKE_ACCOUNT;
    const imageDetails = [];
    for (const id of input.imageIds ?? []) {
      const ref = id.imageTag ?? id.imageDigest!;
      const digest = await h.reg.headDigest(input.repositoryName, ref);
      if (!digest) {
        throw new FakeAwsError(
          "ImageNotFoundException",
          `The image with imageId {imageDigest:'${id.imageDigest ?? "null"}', imageTag:'${id.imageTag ?? "null"}'} does not exist within the repository with name '${input.repositoryName}' in the registry with id '${registryId}'`,
        );
      }
      imageDetails.push({
        registryId,
        repositoryName: input.repositoryName,
        imageDigest: digest,
        imageTags: id.imageTag ? [id.imageTag] : [],
        imagePushedAt: Date.now() / 1000,
      });
    }
    return { imageDetails };
  };

  const { fake, model } = await startFakeCodeBuild({
    region: "us-east-1",
    projects: (name) => projects(name) !== undefined,
    onBuildStarted,
    describeImages,
  });
  return {
    fake,
    model,
    runs,
    async close() {
      await Promise.allSettled(runs);
      await fake.close();
    },
  };
}
