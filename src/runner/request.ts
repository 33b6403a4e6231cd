// The build request and the small pure helpers around it. Shared by the CLI and the Lambda
// entry so both validate their input the same way.

export interface BuildRequest {
  /** CodeBuild project name. */
  projectName: string;
  /** `BUCKET/KEY` of the zipped build context (CodeBuild's S3 source location format). */
  sourceLocation: string;
  /** Image repository without tag, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/app`. */
  repositoryUri: string;
  /** Content-addressed tag to build and push. */
  imageTag: string;
  baseImageUri?: string;
  /** Rebuild even when the tag already exists. */
  force?: boolean;
  /** Region of the CodeBuild project (also used for console links). */
  region: string;
}

export interface RepositoryRef {
  repositoryName: string;
  /** ECR registry (account) id; absent for non-ECR registries (a local registry in e2e tests). */
  registryId?: string;
  /** Region embedded in an ECR host name. */
  region?: string;
}

const ECR_HOST = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;

/** Splits `HOST/PATH` into what ECR's DescribeImages wants; throws on a malformed URI. */
export function parseRepositoryUri(uri: string): RepositoryRef {
  const slash = uri.indexOf("/");
  if (slash <= 0 || slash === uri.length - 1) {
    throw new Error(`repository URI must look like HOST/REPOSITORY, got ${JSON.stringify(uri)}`);
  }
  const host = uri.slice(0, slash);
  const path = uri.slice(slash + 1);
  if (/[:@]/.test(path)) {
    throw new Error(`repository URI must not contain a tag or digest, got ${JSON.stringify(uri)}`);
  }
  const ecr = ECR_HOST.exec(host);
  return ecr ? { repositoryName: path, registryId: ecr[1], region: ecr[2] } : { repositoryName: path };
}

// Docker's tag grammar.
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Returns a list of human-readable problems; empty when the request is usable. */
export function validateBuildRequest(r: Omit<BuildRequest, "region">): string[] {
  const problems: string[] = [];
  if (!r.projectName) problems.push("project name is required");
  if (!/^[^/]+\/.+$/.test(r.sourceLocation ?? "")) {
    problems.push(`source location must be BUCKET/KEY, got ${JSON.stringify(r.sourceLocation)}`);
  }
  try {
    parseRepositoryUri(r.repositoryUri ?? "");
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (!TAG.test(r.imageTag ?? "")) problems.push(`image tag is not a valid Docker tag: ${JSON.stringify(r.imageTag)}`);
  if (r.baseImageUri !== undefined && r.baseImageUri === "") problems.push("base image URI must not be empty when given");
  return problems;
}

export function consoleLink(region: string, projectName: string, buildId: string): string {
  return (
    `https://${region}.console.aws.amazon.com/codesuite/codebuild/projects/` +
    `${encodeURIComponent(projectName)}/build/${encodeURIComponent(buildId)}/?region=${region}`
  );
}

/** The project's build history in the console, for when no build id is known. */
export function projectConsoleLink(region: string, projectName: string): string {
  return (
    `https://${region}.console.aws.amazon.com/codesuite/codebuild/projects/` +
    `${encodeURIComponent(projectName)}/history?region=${region}`
  );
}

export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** `[  12s] PROVISIONING` — fixed width so phase names line up in CI logs. */
export function phaseLine(elapsedMs: number, phase: string): string {
  return `[${formatElapsed(elapsedMs).padStart(6)}] ${phase}`;
}
