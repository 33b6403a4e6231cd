// aws-cdk-lib's natural use as a whole process, for `npm run bench`: node, aws-cdk-lib loaded,
// and what one `new DockerImageAsset(this, id, { directory: root, file: <Dockerfile> })` per image
// fingerprints (aws-ecr-assets image-asset.js): the repository root minus its .dockerignore.
// A lower bound of `cdk synth`, which would also start its CLI and copy each asset into cdk.out.
// Usage: node bench/cdk-natural.mjs <job.json> with { root, ignoreLines, dockerfiles }.
import * as fs from "node:fs";
import * as path from "node:path";
import { FileSystem, IgnoreMode } from "aws-cdk-lib";

const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
for (const dockerfile of job.dockerfiles) {
  FileSystem.fingerprint(job.root, {
    exclude: [...job.ignoreLines, "!.dockerignore", `!${path.basename(dockerfile)}`],
    ignoreMode: IgnoreMode.DOCKER,
    extraHash: JSON.stringify({ file: dockerfile }),
  });
}
