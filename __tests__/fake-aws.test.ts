// The test-only fake CodeBuild behaves as AWS documents CodeBuild, through the real SDK: the runner's
// tests are only as good as the fake they run against.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CodeBuildClient, ListBuildsForProjectCommand, StartBuildCommand, type StartBuildCommandInput } from "@aws-sdk/client-codebuild";
import { FAKE_ACCOUNT, FAKE_REGION, IDEMPOTENCY_WINDOW_MS, startFakeCodeBuild, type FakeAws, type FakeModel } from "./fake-aws/index.ts";

const PROJECT = "lambda-images";
const REPO = `${FAKE_ACCOUNT}.dkr.ecr.${FAKE_REGION}.amazonaws.com/app`;

let fake: FakeAws;
let model: FakeModel;
let client: CodeBuildClient;
let clock = 1_800_000_000_000;

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: Error) => ({ name: e.name, message: e.message }),
  );

beforeEach(async () => {
  ({ fake, model } = await startFakeCodeBuild({ projects: [PROJECT], now: () => clock }));
  client = new CodeBuildClient({
    endpoint: fake.endpoint,
    region: FAKE_REGION,
    credentials: { accessKeyId: "AKIAFAKE", secretAccessKey: "fake" },
    maxAttempts: 1,
  });
});

afterEach(async () => {
  client.destroy();
  await fake.close();
});

/** Every id ListBuildsForProject gives, page by page, and the page sizes. */
async function listAll(sortOrder?: "ASCENDING" | "DESCENDING"): Promise<{ ids: string[]; pages: number[] }> {
  const ids: string[] = [];
  const pages: number[] = [];
  let nextToken: string | undefined;
  do {
    const out = await client.send(new ListBuildsForProjectCommand({ projectName: PROJECT, sortOrder, nextToken }));
    ids.push(...(out.ids ?? []));
    pages.push(out.ids?.length ?? 0);
    nextToken = out.nextToken;
  } while (nextToken);
  return { ids, pages };
}

// https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html
// https://docs.aws.amazon.com/codebuild/latest/APIReference/API_ListBuildsForProject.html
describe("fake CodeBuild follows the API reference", () => {
  it("answers ResourceNotFoundException for a project that does not exist", async () => {
    expect(await errorOf(client.send(new StartBuildCommand({ projectName: "nope" })))).toEqual({
      name: "ResourceNotFoundException",
      message: `Project cannot be found: arn:aws:codebuild:${FAKE_REGION}:${FAKE_ACCOUNT}:project/nope`,
    });
    expect(await errorOf(client.send(new ListBuildsForProjectCommand({ projectName: "nope" })))).toEqual({
      name: "ResourceNotFoundException",
      message: `The provided project arn:aws:codebuild:${FAKE_REGION}:${FAKE_ACCOUNT}:project/nope does not exist`,
    });
    expect(model.builds.size).toBe(0);
  });

  it("lists by build number, newest first unless sortOrder says ASCENDING", async () => {
    const seeded = ["a", "b", "c"].map((tag) => model.seedBuild({ projectName: PROJECT, imageTag: tag, repositoryUri: REPO }).id);
    expect((await listAll()).ids).toEqual([...seeded].reverse());
    expect((await listAll("DESCENDING")).ids).toEqual([...seeded].reverse());
    expect((await listAll("ASCENDING")).ids).toEqual(seeded);
  });

  it("pages 100 ids at a time with nextToken, and refuses a sortOrder on more than 100 builds", async () => {
    const seeded = Array.from({ length: 250 }, (_, i) =>
      model.seedBuild({ projectName: PROJECT, imageTag: `t${i}`, repositoryUri: REPO, finished: "SUCCEEDED" }).id,
    );
    const { ids, pages } = await listAll();
    expect(pages).toEqual([100, 100, 50]);
    expect(ids).toEqual([...seeded].reverse());
    // "If the project has more than 100 builds, setting the sort order will result in an error."
    expect((await errorOf(listAll("DESCENDING")))?.name).toBe("InvalidInputException");
    expect((await errorOf(client.send(new ListBuildsForProjectCommand({ projectName: PROJECT, nextToken: "made-up" }))))?.name).toBe(
      "InvalidInputException",
    );
  });

  describe("idempotencyToken", () => {
    const start = (over: Partial<StartBuildCommandInput> = {}) =>
      client.send(new StartBuildCommand({ projectName: PROJECT, sourceLocationOverride: "b/k.zip", idempotencyToken: "tok-1", ...over }));

    it("returns the same build for the same token within five minutes, and starts a new one after", async () => {
      const first = (await start()).build!.id;
      clock += IDEMPOTENCY_WINDOW_MS - 1;
      expect((await start()).build!.id).toBe(first);
      expect(model.builds.size).toBe(1);
      clock += 1;
      expect((await start()).build!.id).not.toBe(first);
      expect(model.builds.size).toBe(2);
    });

    it("is case sensitive", async () => {
      const first = (await start()).build!.id;
      expect((await start({ idempotencyToken: "TOK-1" })).build!.id).not.toBe(first);
    });

    it("with a changed parameter answers a parameter mismatch error and starts nothing", async () => {
      await start();
      const err = await errorOf(start({ sourceLocationOverride: "b/other.zip" }));
      expect(err).toEqual({ name: "InvalidInputException", message: "idempotency token was used with different parameters" });
      expect(model.builds.size).toBe(1);
    });
  });
});
