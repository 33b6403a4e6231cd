import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AnalyzedImage, ImageAnalysis } from "../analyze.ts";
import { stableStringify } from "./stable-json.ts";
import type { ImageKind } from "../manifest/spec.ts";

/**
 * What a synth built, written next to the synthesized stacks so `plan` can tell what the next
 * synth would rebuild and why. Only hashes and paths: no timestamps, no absolute paths.
 */
export const SNAPSHOT_FILE = "images.snapshot.json";
const FORMAT = "lambda-images-snapshot";
/** 2: files listed once in a shared table, images refer to them by index ranges (1 listed every file per image and stack). */
const VERSION = 2;

export interface ImageSnapshot {
  readonly kind: ImageKind;
  readonly name: string;
  readonly hash: string;
  readonly tag: string;
  /** Name of the base image it is built FROM. */
  readonly baseImage: string | null;
  /** That base image's content hash, at this synth. */
  readonly baseImageHash: string | null;
  readonly platforms: readonly string[];
  readonly dockerfile: string;
  /** SHA-256 of the Dockerfile text. */
  readonly dockerfileSha256: string;
  /** SHA-256 of the build args (sorted JSON). */
  readonly buildArgsSha256: string;
  /** Root-relative path → `f:<sha256>`, `x:<sha256>` (executable) or `l:<link target>`. */
  readonly files: Readonly<Record<string, string>>;
  /** Root-relative build context, when not the root. */
  readonly context?: string;
  /** Bytes of the context archive the synth wrote (CodeBuild-built images). */
  readonly contextBytes?: number;
  /** The external image the Dockerfile starts FROM (images without a base image of ours). */
  readonly from?: string;
}

export interface StackSnapshot {
  /** By `<kind>:<name>`. */
  readonly images: Readonly<Record<string, ImageSnapshot>>;
}

/** A snapshot in memory: every image with its own file map (images of the same content share one). */
export interface Snapshot {
  readonly format: typeof FORMAT;
  readonly version: typeof VERSION;
  readonly stacks: Readonly<Record<string, StackSnapshot>>;
}

/**
 * The snapshot on disk. At scale most of it is file lists (tens of thousands of image-file pairs,
 * the same files in every stack and in several images), so each distinct file is written once,
 * `path<TAB>type:digest`, sorted, and an image names its files as ranges of indices into that
 * table ("0-120,305,400-410"): a tenth of the size, read and written in a fraction of the time.
 */
interface DiskSnapshot {
  readonly format: typeof FORMAT;
  readonly version: typeof VERSION;
  readonly files: readonly string[];
  readonly stacks: Readonly<Record<string, { readonly images: Readonly<Record<string, Omit<ImageSnapshot, "files"> & { readonly files: string }>> }>>;
}

function toDisk(snapshot: Snapshot): DiskSnapshot {
  // Each distinct file list once (an image is in several stacks), as path-sorted pairs.
  const listOf = new Map<ImageSnapshot, FileList>();
  const lists = new Set<FileList>();
  for (const stack of Object.values(snapshot.stacks)) {
    for (const image of Object.values(stack.images)) {
      const list = sortedFileLists.get(image)?.list() ?? Object.entries(image.files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      listOf.set(image, list);
      lists.add(list);
    }
  }
  const table = new Map<string, string>();
  for (const list of lists) for (const [file, value] of list) table.set(file, value);
  const paths = [...table.keys()].sort();
  const indexOf = new Map(paths.map((p, i) => [p, i]));
  const rangesOf = new Map<FileList, string>();
  const ranges = (list: FileList): string => {
    let text = rangesOf.get(list);
    if (text === undefined) {
      // Sorted paths have ascending indices: runs of consecutive ones become "a-b".
      const parts: string[] = [];
      for (let i = 0; i < list.length; ) {
        const from = indexOf.get(list[i]![0])!;
        let j = i;
        while (j + 1 < list.length && indexOf.get(list[j + 1]![0]) === from + (j + 1 - i)) j++;
        parts.push(i === j ? `${from}` : `${from}-${from + (j - i)}`);
        i = j + 1;
      }
      text = parts.join(",");
      rangesOf.set(list, text);
    }
    return text;
  };
  const stacks: Record<string, { images: Record<string, Omit<ImageSnapshot, "files"> & { files: string }> }> = {};
  for (const [name, stack] of Object.entries(snapshot.stacks)) {
    stacks[name] = {
      images: Object.fromEntries(
        Object.entries(stack.images).map(([key, image]) => {
          const { files: _files, ...rest } = Object.getOwnPropertyDescriptors(image);
          const fields = Object.fromEntries(Object.entries(rest).map(([k, d]) => [k, d.value])) as Omit<ImageSnapshot, "files">;
          return [key, { ...fields, files: ranges(listOf.get(image)!) }];
        }),
      ),
    };
  }
  return { format: FORMAT, version: VERSION, files: paths.map((p) => `${p}\t${table.get(p)}`), stacks };
}

function fromDisk(disk: DiskSnapshot): Snapshot {
  const table = disk.files.map((line) => {
    const tab = line.lastIndexOf("\t");
    return [line.slice(0, tab), line.slice(tab + 1)] as const;
  });
  const filesOf = new Map<string, Record<string, string>>();
  const files = (ranges: string): Record<string, string> => {
    let map = filesOf.get(ranges);
    if (!map) {
      map = {};
      for (const part of ranges === "" ? [] : ranges.split(",")) {
        const [from, to] = part.split("-").map(Number) as [number, number | undefined];
        for (let i = from; i <= (to ?? from); i++) {
          const entry = table[i];
          if (!entry) throw new Error(`file index ${i} is out of range`);
          map[entry[0]] = entry[1];
        }
      }
      filesOf.set(ranges, map);
    }
    return map;
  };
  const stacks: Record<string, StackSnapshot> = {};
  for (const [name, stack] of Object.entries(disk.stacks)) {
    stacks[name] = {
      images: Object.fromEntries(Object.entries(stack.images).map(([key, { files: ranges, ...image }]) => [key, withLazyFiles(image, () => files(ranges))])),
    };
  }
  return { format: FORMAT, version: VERSION, stacks };
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** An image's files as [path, value] pairs sorted by path. */
type FileList = readonly (readonly [string, string])[];

/** For snapshots of an analysis: each image's sorted file list, made without building its map, and its length, known without making either. */
const sortedFileLists = new WeakMap<ImageSnapshot, { readonly list: () => FileList; readonly count: number }>();

/** The number of files of an image in a snapshot. */
export function fileCount(image: ImageSnapshot): number {
  return sortedFileLists.get(image)?.count ?? Object.keys(image.files).length;
}

/**
 * An image snapshot whose `files` map is built the first time it is read: a plan compares file
 * maps only for images whose hash changed, and at scale the maps are tens of thousands of entries.
 */
function withLazyFiles(
  image: Omit<ImageSnapshot, "files">,
  build: () => Readonly<Record<string, string>>,
  sorted?: { readonly list: () => FileList; readonly count: number },
): ImageSnapshot {
  let files: Readonly<Record<string, string>> | undefined;
  const lazy = Object.defineProperty({ ...image }, "files", {
    enumerable: true,
    get: () => (files ??= build()),
  }) as ImageSnapshot;
  if (sorted) sortedFileLists.set(lazy, sorted);
  return lazy;
}

/** One image of one stack as a synth built it. */
export interface SnapshotRecord {
  readonly stack: string;
  readonly image: AnalyzedImage;
  readonly tag: string;
  /** File digests of the image's repository (its analyzer's). */
  readonly digests: ReadonlyMap<string, string>;
  /** Bytes of its context archive, when it has one. */
  readonly contextBytes?: number;
  /** The external image its first stage starts FROM, when it has no base image of ours (for `graph`). */
  readonly from?: string;
}

/** The snapshot of an analysis for the given stacks. Pure. */
export function buildSnapshot(analysis: ImageAnalysis, stacks: readonly string[]): Snapshot {
  return buildSnapshotFromRecords(
    stacks.flatMap((stack) => analysis.images.map((image) => ({ stack, image, tag: analysis.tagFor(image, stack), digests: analysis.digests }))),
  );
}

/** The snapshot of what each stack builds. Pure. */
export function buildSnapshotFromRecords(records: readonly SnapshotRecord[]): Snapshot {
  const hashOf = new Map(records.map((r) => [`${r.stack}\0base:${r.image.spec.name}`, r.image.hash]));
  const out: Record<string, { images: Record<string, ImageSnapshot> }> = {};
  // An image in several stacks has the same files: listed once (tens of thousands of entries at scale).
  const listOf = new Map<AnalyzedImage, FileList>();
  const filesOf = new Map<AnalyzedImage, Record<string, string>>();
  // fileListLines' (path, type, digest or link target), without building and splitting a line per file.
  const listOfImage = (image: AnalyzedImage, digests: ReadonlyMap<string, string>): FileList => {
    let list = listOf.get(image);
    if (!list) {
      list = image.selection.files.map(({ entry, linkTarget }) => {
        if (entry.kind === "symlink") return [entry.path, `l:${linkTarget}`] as const;
        const digest = digests.get(entry.path);
        if (!digest) throw new Error(`internal: no digest for ${entry.path}`);
        return [entry.path, `${entry.mode & 0o111 ? "x" : "f"}:${digest}`] as const;
      });
      listOf.set(image, list);
    }
    return list;
  };
  const filesOfImage = (image: AnalyzedImage, digests: ReadonlyMap<string, string>) => {
    let files = filesOf.get(image);
    if (!files) {
      files = Object.fromEntries(listOfImage(image, digests));
      filesOf.set(image, files);
    }
    return files;
  };
  for (const { stack, image, tag, digests, contextBytes, from } of records) {
    const { spec, selection } = image;
    out[stack] ??= { images: {} };
    out[stack].images[`${spec.kind}:${spec.name}`] = withLazyFiles({
      kind: spec.kind,
      name: spec.name,
      hash: image.hash,
      tag,
      baseImage: spec.baseImage ?? null,
      baseImageHash: spec.baseImage ? (hashOf.get(`${stack}\0base:${spec.baseImage}`) ?? null) : null,
      platforms: [...spec.platforms],
      dockerfile: spec.dockerfile,
      dockerfileSha256: sha256(selection.dockerfileText),
      buildArgsSha256: sha256(JSON.stringify(Object.entries(spec.buildArgs).sort(([a], [b]) => (a < b ? -1 : 1)))),
      ...(spec.context ? { context: spec.context } : {}),
      ...(contextBytes !== undefined ? { contextBytes } : {}),
      ...(from ? { from } : {}),
    }, () => filesOfImage(image, digests), { list: () => listOfImage(image, digests), count: selection.files.length });
  }
  return { format: FORMAT, version: VERSION, stacks: out };
}

/** Writes `<outdir>/images.snapshot.json` atomically (stable text: sorted keys). */
export function writeSnapshot(outdir: string, snapshot: Snapshot): string {
  fs.mkdirSync(outdir, { recursive: true });
  const file = path.join(outdir, SNAPSHOT_FILE);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(tmp, `${stableStringify(toDisk(snapshot))}\n`);
  fs.renameSync(tmp, file);
  return file;
}

export type ReadSnapshotResult =
  | { readonly status: "found"; readonly file: string; readonly snapshot: Snapshot }
  | { readonly status: "missing" | "unreadable"; readonly file: string; readonly reason: string };

/** Reads the snapshot the last synth left in `outdir`. Never throws. */
export function readSnapshot(outdir: string): ReadSnapshotResult {
  const file = path.join(outdir, SNAPSHOT_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return { status: "missing", file, reason: `no ${SNAPSHOT_FILE} in ${outdir}: not synthesized yet (or by a version that did not write one)` };
  }
  try {
    const data = JSON.parse(text) as Partial<DiskSnapshot>;
    if (data.format !== FORMAT || data.version !== VERSION || typeof data.stacks !== "object" || data.stacks === null || !Array.isArray(data.files)) {
      return { status: "unreadable", file, reason: `${file} is not a version ${VERSION} ${FORMAT} (synthesize again)` };
    }
    return { status: "found", file, snapshot: fromDisk(data as DiskSnapshot) };
  } catch (error) {
    return { status: "unreadable", file, reason: `${file} is not valid JSON (${(error as Error).message})` };
  }
}
