import { createHash } from "node:crypto";
import type { Platform } from "../manifest/schema.ts";
import type { SelectedFile } from "../selection/select.ts";
import { dockerfileOutsideContext } from "../manifest/spec.ts";

/** Bumped when the hash layout changes, so old and new hashes never collide. */
const HASH_VERSION = "lambda-images/1";
/** Bumped when what a context archive or staged context holds changes (its layout, its modes). */
const CONTEXT_HASH_VERSION = "lambda-images/context/1";

export interface ImageHashInputs {
  readonly files: readonly SelectedFile[];
  readonly digests: ReadonlyMap<string, string>;
  readonly dockerfile: string;
  readonly dockerfileText: string;
  readonly platforms: readonly Platform[];
  readonly buildArgs: Readonly<Record<string, string>>;
  /** The content hash of the base image this image is built FROM. */
  readonly baseImageHash?: string;
  /** The buildspec, for images built in CodeBuild: a change to how an image is built rebuilds it. */
  readonly buildspec?: string;
  /** Root-relative build context directory; "" (the root) adds nothing, so hashes from before contexts existed hold. */
  readonly context?: string;
}

/**
 * One line per file: path, type (executable file, plain file, symlink) and content digest or
 * link target. Only the executable bit of the mode counts, so umask and mtimes do not.
 */
export function fileListLines(files: readonly SelectedFile[], digests: ReadonlyMap<string, string>): string[] {
  return files.map(({ entry, linkTarget }) => {
    if (entry.kind === "symlink") return `${entry.path}\0l\0${linkTarget}\0${digests.get(entry.path) ?? "-"}`;
    const digest = digests.get(entry.path);
    if (!digest) throw new Error(`internal: no digest for ${entry.path}`);
    return `${entry.path}\0${entry.mode & 0o111 ? "x" : "f"}\0${digest}`;
  });
}

export interface ImageHashes {
  /** The image's content hash: its files plus every other input of the build (its base image's hash too). */
  readonly hash: string;
  /**
   * The hash of only what its build context holds: each selected file's path relative to the
   * context, its type and its content digest, and each symlink's text. Its context archive and
   * staged context are named by it, so an image rebuilt only because its base image, buildspec or
   * build args changed reuses both instead of compressing or copying the same files again.
   */
  readonly contextHash: string;
}

/** An image's content hash and its context's own hash, from one pass over the file list. */
export function imageHashes(inputs: ImageHashInputs): ImageHashes {
  const hash = createHash("sha256");
  // One update for the whole list: tens of thousands of small updates cost more than the hashing.
  const lines = fileListLines(inputs.files, inputs.digests);
  const list = `${lines.join("\n")}${lines.length > 0 ? "\n" : ""}`;
  hash.update(`${HASH_VERSION}\n${list}`);
  // The list names files by root-relative path, so with the context it fixes their paths in the
  // archive; a link's line holds its target, and the archive stores the link's own text.
  const links = inputs.files.filter(({ entry }) => entry.kind === "symlink").map(({ entry }) => `${entry.path}\0${entry.linkText}\n`);
  // An outside Dockerfile has a place of its own in the archive and the staged context (archiveLayout).
  const outside = dockerfileOutsideContext({ dockerfile: inputs.dockerfile, context: inputs.context ?? "" }) ? `outside Dockerfile ${inputs.dockerfile}\n` : "";
  const contextHash = createHash("sha256")
    .update(`${CONTEXT_HASH_VERSION}\n${inputs.context ?? ""}\n${list}\n${links.join("")}${outside}`)
    .digest("hex");
  hash.update(
    JSON.stringify({
      dockerfile: inputs.dockerfile,
      dockerfileText: inputs.dockerfileText,
      platforms: [...inputs.platforms],
      buildArgs: Object.entries(inputs.buildArgs).sort(([a], [b]) => (a < b ? -1 : 1)),
      base: inputs.baseImageHash ?? null,
      buildspec: inputs.buildspec ?? null,
      ...(inputs.context ? { context: inputs.context } : {}),
    }),
  );
  return { hash: hash.digest("hex"), contextHash };
}
