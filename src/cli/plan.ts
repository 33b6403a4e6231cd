import * as path from "node:path";
import type { ImageAnalysis } from "../analyze.ts";
import { shownPath } from "../manifest/checks.ts";
import { contextArchiveSizes, dockerContextBytes } from "../archive/context-archive.ts";
import { buildSnapshot, fileCount, type ImageSnapshot, type ReadSnapshotResult, type Snapshot } from "../snapshot/snapshot.ts";
import type { ImageKind } from "../manifest/spec.ts";

/** Why an image will be rebuilt. */
export type PlanReason =
  | { readonly type: "files"; readonly added: readonly string[]; readonly removed: readonly string[]; readonly changed: readonly string[] }
  | { readonly type: "dockerfile"; readonly from: string; readonly to: string }
  | { readonly type: "platforms"; readonly from: readonly string[]; readonly to: readonly string[] }
  | { readonly type: "buildArgs" }
  /** `switched`: built FROM another base image; `rebuilt`: its base image will be rebuilt. */
  | { readonly type: "baseImage"; readonly change: "switched" | "rebuilt"; readonly from: string | null; readonly to: string | null }
  | { readonly type: "tag"; readonly from: string; readonly to: string }
  /** The hash changed and none of the recorded inputs did: the hash layout itself changed. */
  | { readonly type: "hashFormat" };

export type PlanStatus = "new" | "rebuild" | "unchanged";

export interface PlannedImage {
  readonly kind: ImageKind;
  readonly name: string;
  readonly tag: string;
  readonly previousTag: string | null;
  readonly hash: string;
  /** Files in the build context (the Dockerfile included). */
  readonly files: number;
  /** Bytes of the compressed context archive; null when not measured. */
  readonly contextBytes: number | null;
  readonly baseImage: string | null;
  readonly platforms: readonly string[];
  readonly status: PlanStatus;
  readonly reasons: readonly PlanReason[];
}

export interface Plan {
  /** Whether the last synth's snapshot was there to compare with. */
  readonly snapshot: ReadSnapshotResult["status"];
  readonly stacks: readonly { readonly name: string; readonly images: readonly PlannedImage[] }[];
  readonly summary: { readonly images: number; readonly new: number; readonly rebuild: number; readonly unchanged: number };
}

/** Compares the current analysis with the last synth's snapshot. Pure. */
export function computePlan(
  analysis: ImageAnalysis,
  stacks: readonly string[],
  previous: ReadSnapshotResult,
  contextBytes: ReadonlyMap<string, number> = new Map(),
): Plan {
  return comparePlans(buildSnapshot(analysis, stacks), previous, contextBytes);
}

/**
 * What the next synth (`current`) rebuilds compared with the last one (`previous`), per stack and
 * image, with the reasons. Pure: both front ends end here, images.yaml with a fresh analysis,
 * a construct app with the snapshot of a synth into a scratch directory.
 */
export function comparePlans(current: Snapshot, previous: ReadSnapshotResult, contextBytes: ReadonlyMap<string, number> = new Map()): Plan {
  const counts = { images: 0, new: 0, rebuild: 0, unchanged: 0 };
  const planned = Object.keys(current.stacks)
    .sort()
    .map((stack) => {
      const before = previous.status === "found" ? previous.snapshot.stacks[stack]?.images : undefined;
      const now = current.stacks[stack]!.images;
      const images = Object.keys(now)
        .sort()
        .map((key): PlannedImage => {
          const image = now[key]!;
          const was = before?.[key];
          const reasons = was ? diffImage(was, image) : [];
          const status: PlanStatus = !was ? "new" : reasons.length > 0 ? "rebuild" : "unchanged";
          counts.images++;
          counts[status]++;
          return {
            kind: image.kind,
            name: image.name,
            tag: image.tag,
            previousTag: was?.tag ?? null,
            hash: image.hash,
            files: fileCount(image),
            contextBytes: contextBytes.get(key) ?? image.contextBytes ?? null,
            baseImage: image.baseImage,
            platforms: image.platforms,
            status,
            reasons,
          };
        });
      return { name: stack, images };
    });
  return { snapshot: previous.status, stacks: planned, summary: counts };
}

function diffImage(was: ImageSnapshot, now: ImageSnapshot): PlanReason[] {
  const reasons: PlanReason[] = [];
  const dockerfileChanged = was.dockerfile !== now.dockerfile || was.dockerfileSha256 !== now.dockerfileSha256;
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  // The hash covers every file's path, type and digest: equal hashes, equal files (the common case, and the costly one to compare).
  if (was.hash !== now.hash) for (const [file, value] of Object.entries(now.files)) {
    if (dockerfileChanged && (file === now.dockerfile || file === was.dockerfile)) continue;
    if (!(file in was.files)) added.push(file);
    else if (was.files[file] !== value) changed.push(file);
  }
  if (was.hash !== now.hash) for (const file of Object.keys(was.files)) {
    if (dockerfileChanged && (file === now.dockerfile || file === was.dockerfile)) continue;
    if (!(file in now.files)) removed.push(file);
  }
  if (added.length || removed.length || changed.length) {
    reasons.push({ type: "files", added: added.sort(), removed: removed.sort(), changed: changed.sort() });
  }
  if (dockerfileChanged) reasons.push({ type: "dockerfile", from: was.dockerfile, to: now.dockerfile });
  if (was.platforms.join(",") !== now.platforms.join(",")) reasons.push({ type: "platforms", from: was.platforms, to: now.platforms });
  if (was.buildArgsSha256 !== now.buildArgsSha256) reasons.push({ type: "buildArgs" });
  if (was.baseImage !== now.baseImage) reasons.push({ type: "baseImage", change: "switched", from: was.baseImage, to: now.baseImage });
  else if (was.baseImageHash !== now.baseImageHash) reasons.push({ type: "baseImage", change: "rebuilt", from: was.baseImage, to: now.baseImage });
  if (was.hash !== now.hash && reasons.length === 0) reasons.push({ type: "hashFormat" });
  // A new hash gives a new content tag anyway; a new tag for the same content is a reason of its own
  // (e.g. useStaticBaseImage toggled, or a git tag once the inputs are committed).
  if (was.hash === now.hash && was.tag !== now.tag) reasons.push({ type: "tag", from: was.tag, to: now.tag });
  return reasons;
}

/**
 * Bytes of each image's build context as it travels, without compressing anything (plan uploads
 * nothing): for a CodeBuild-built image, its compressed archive in S3 when synth has built it
 * (the size recorded beside the archive it keeps in the cache directory, content-addressed, so an
 * unchanged image costs a read) or has compressed every one of its files (summed from the
 * compressed streams' sizes), else unmeasured; for a Docker-built base, the files Docker
 * receives (its build context is an uncompressed tar).
 */
export function measureContextBytes(analysis: ImageAnalysis, cacheDir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  const archived = analysis.images.filter((image) => image.spec.builder !== "docker");
  const bytes = contextArchiveSizes(cacheDir, archived, analysis.manifest.root, analysis.digests);
  archived.forEach((image, i) => {
    if (bytes[i] !== undefined) sizes.set(`${image.spec.kind}:${image.spec.name}`, bytes[i]!);
  });
  for (const image of analysis.images) if (image.spec.builder === "docker") sizes.set(`${image.spec.kind}:${image.spec.name}`, dockerContextBytes(image));
  return sizes;
}

export function describeReason(reason: PlanReason): string[] {
  switch (reason.type) {
    case "files":
      return [
        ...reason.added.map((f) => `added ${f}`),
        ...reason.removed.map((f) => `removed ${f}`),
        ...reason.changed.map((f) => `changed ${f}`),
      ];
    case "dockerfile":
      return [reason.from === reason.to ? `Dockerfile ${reason.to} changed` : `Dockerfile is now ${reason.to} (was ${reason.from})`];
    case "platforms":
      return [`platforms ${reason.from.join(", ")} -> ${reason.to.join(", ")}`];
    case "buildArgs":
      return ["build args changed"];
    case "baseImage":
      return reason.change === "switched"
        ? [`base image ${reason.from ?? "(none)"} -> ${reason.to ?? "(none)"}`]
        : [`base image ${reason.to} will be rebuilt`];
    case "tag":
      return [`tag ${reason.from} -> ${reason.to}`];
    case "hashFormat":
      return ["the content hash format changed"];
  }
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return "-";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** How many changed files a plan shows per image without --verbose. */
export const FILES_SHOWN = 5;

export interface PlanFormat {
  /** Why the last synth's snapshot could not be compared ("" when it was found). */
  readonly snapshotNote: string;
  /** Every changed file, not the first {@link FILES_SHOWN}. */
  readonly verbose?: boolean;
}

/** A sentence on the whole plan: what a reviewer reads first. */
export function planSummary(plan: Plan): string {
  const { images, rebuild, unchanged } = plan.summary;
  const stacks = plan.stacks.length;
  return `${rebuild} to rebuild, ${plan.summary.new} new, ${unchanged} unchanged (${images} image${images === 1 ? "" : "s"} in ${stacks} stack${stacks === 1 ? "" : "s"}).`;
}

/**
 * Whether the last synth was of something else: a different manifest (or app) has other stacks
 * or images, so comparing with it would call every image new. Returns the note to print, if any.
 */
export function otherSynthNote(plan: Plan, previous: ReadSnapshotResult): string | undefined {
  if (previous.status !== "found") return undefined;
  const before = previous.snapshot.stacks;
  const beforeKeys = new Set(Object.entries(before).flatMap(([stack, s]) => Object.keys(s.images).map((k) => `${stack}/${k}`)));
  if (beforeKeys.size === 0) return undefined;
  const nowKeys = plan.stacks.flatMap((s) => s.images.map((i) => `${s.name}/${i.kind}:${i.name}`));
  const gone = Object.keys(before).filter((stack) => !plan.stacks.some((s) => s.name === stack)).sort();
  if (!nowKeys.some((k) => beforeKeys.has(k))) {
    return `note: the last synth in ${shownPath(path.dirname(previous.file))} came from another manifest or app (its stacks: ${Object.keys(before).sort().join(", ")}; none of its images is in this one), so every image here reads as new. Synthesize this manifest, or pass --out with its output directory.`;
  }
  if (gone.length) return `note: the last synth also had stack${gone.length > 1 ? "s" : ""} ${gone.join(", ")}, which this manifest does not define.`;
  return undefined;
}

/** An image's reasons as lines, changed files cut to the first few unless verbose. */
function reasonLines(image: PlannedImage, verbose: boolean): string[] {
  const lines: string[] = [];
  for (const reason of image.reasons) {
    if (reason.type !== "files" || verbose) {
      lines.push(...describeReason(reason));
      continue;
    }
    const all = describeReason(reason);
    lines.push(...all.slice(0, FILES_SHOWN));
    const rest = all.length - FILES_SHOWN;
    if (rest > 0) lines.push(`… and ${rest} more file${rest === 1 ? "" : "s"} (--verbose lists them): ${fileCounts(reason)}`);
  }
  return lines;
}

function fileCounts(reason: Extract<PlanReason, { type: "files" }>): string {
  return [
    reason.added.length ? `${reason.added.length} added` : "",
    reason.removed.length ? `${reason.removed.length} removed` : "",
    reason.changed.length ? `${reason.changed.length} changed` : "",
  ]
    .filter(Boolean)
    .join(", ");
}

/** The plan as a table for people: the summary first, then per stack; reasons repeated in another stack are referred to, not repeated. */
export function formatPlanTable(plan: Plan, format: PlanFormat | string, previous?: ReadSnapshotResult): string {
  const { snapshotNote, verbose = false } = typeof format === "string" ? { snapshotNote: format } : format;
  const lines: string[] = [planSummary(plan)];
  if (plan.snapshot !== "found") lines.push(`${snapshotNote}; every image is new.`);
  const other = previous ? otherSynthNote(plan, previous) : undefined;
  if (other) lines.push(other);
  lines.push("");
  const header = ["IMAGE", "TAG", "FILES", "CONTEXT", "BASE", "PLATFORMS", "STATUS"];
  const shownIn = new Map<string, { stack: string; reasons: string }>();
  for (const stack of plan.stacks) {
    const rows = stack.images.map((i) => [
      `${i.kind} ${i.name}`,
      i.tag,
      String(i.files),
      formatBytes(i.contextBytes),
      i.baseImage ?? "-",
      i.platforms.join(","),
      i.status,
    ]);
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
    const row = (cells: string[]) => cells.map((cell, c) => (c === 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ").trimEnd();
    lines.push(`stack ${stack.name}`, `  ${row(header)}`);
    stack.images.forEach((image, n) => {
      lines.push(`  ${row(rows[n]!)}`);
      if (image.reasons.length === 0) return;
      const key = `${image.kind}:${image.name}`;
      const reasons = JSON.stringify(image.reasons);
      const earlier = shownIn.get(key);
      if (earlier && earlier.reasons === reasons) {
        lines.push(`      - the same changes as in stack ${earlier.stack}`);
        return;
      }
      shownIn.set(key, { stack: stack.name, reasons });
      for (const text of reasonLines(image, verbose)) lines.push(`      - ${text}`);
    });
    lines.push("");
  }
  lines.push(planSummary(plan));
  return lines.join("\n");
}

/**
 * The plan in Markdown, for a CI job to post on a pull request: the summary, then a table of the
 * images that will be built and why, and the unchanged ones folded away.
 */
export function formatPlanMarkdown(plan: Plan, format: PlanFormat, previous?: ReadSnapshotResult): string {
  const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const code = (text: string) => `\`${text.replace(/`/g, "")}\``;
  const out: string[] = ["### Lambda images", "", `**${planSummary(plan)}**`, ""];
  if (plan.snapshot !== "found") out.push(`> ${format.snapshotNote}; every image is new.`, "");
  const other = previous ? otherSynthNote(plan, previous) : undefined;
  if (other) out.push(`> ${other.replace(/^note: /, "")}`, "");
  const built = plan.stacks.flatMap((s) => s.images.filter((i) => i.status !== "unchanged").map((i) => ({ stack: s.name, image: i })));
  if (built.length) {
    out.push("| Stack | Image | Status | Tag | Why |", "|---|---|---|---|---|");
    for (const { stack, image } of built) {
      const why = image.status === "new" ? "not in the last synth" : reasonLines(image, format.verbose ?? false).map((l) => cell(l)).join("<br>");
      out.push(`| ${stack} | ${image.kind} ${code(image.name)} | ${image.status} | ${code(image.tag)} | ${why} |`);
    }
    out.push("");
  } else {
    out.push("Nothing to build.", "");
  }
  const unchanged = plan.stacks.flatMap((s) => s.images.filter((i) => i.status === "unchanged").map((i) => `${s.name}: ${i.kind} ${code(i.name)} ${code(i.tag)}`));
  if (unchanged.length) out.push(`<details><summary>${unchanged.length} unchanged</summary>`, "", ...unchanged.map((u) => `- ${u}`), "", "</details>", "");
  return out.join("\n");
}
