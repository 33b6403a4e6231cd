import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as os from "node:os";
import { run } from "../src/cli/main.ts";

// `plan --app COMMAND --no-cache` (issue 22, item 3): the app it runs must hash every file too,
// so it gets LAMBDA_IMAGES_NO_CACHE=1, which the app's caches obey (openDigestCache).

const io = { out: { write: () => true }, err: { write: () => true }, cwd: os.tmpdir() };
// A stand-in app that prints what it was given and fails: plan reports its output's tail.
const APP = `"${process.execPath}" -e "console.log('LAMBDA_IMAGES_NO_CACHE=' + process.env.LAMBDA_IMAGES_NO_CACHE); process.exit(3)"`;

let saved: string | undefined;
beforeEach(() => {
  saved = process.env.LAMBDA_IMAGES_NO_CACHE;
  delete process.env.LAMBDA_IMAGES_NO_CACHE;
});
afterEach(() => {
  if (saved !== undefined) process.env.LAMBDA_IMAGES_NO_CACHE = saved;
});

describe("plan --app", () => {
  it("passes --no-cache on to the app it runs", async () => {
    await expect(run(["plan", "--app", APP, "--no-cache"], io)).rejects.toThrow(/failed with exit 3:\nLAMBDA_IMAGES_NO_CACHE=1$/);
  });

  it("leaves the app's caches on without it", async () => {
    await expect(run(["plan", "--app", APP], io)).rejects.toThrow(/failed with exit 3:\nLAMBDA_IMAGES_NO_CACHE=undefined$/);
  });
});
