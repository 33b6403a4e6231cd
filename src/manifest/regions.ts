import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";

/** One AWS partition as the AWS SDK ships it: its regions and the pattern its region names follow. */
interface Partition {
  readonly id: string;
  readonly regionRegex: string;
  readonly regions: Readonly<Record<string, unknown>>;
}

/**
 * The partitions data of the AWS SDK for JavaScript v3 (the endpoint resolver's
 * partitions.json, bundled into @aws-sdk/core since it replaced @aws-sdk/util-endpoints). It is
 * read as data rather than imported, because the package exports only the `partition()`
 * function, which answers for any name that fits a pattern (it would take us-east-9).
 */
function loadPartitions(): readonly Partition[] {
  try {
    return readPartitions();
  } catch {
    return [];
  }
}

function readPartitions(): readonly Partition[] {
  const require = createRequire(import.meta.url);
  const pkg = path.dirname(require.resolve("@aws-sdk/core/package.json"));
  const file = path.join(pkg, "dist-es/submodules/client/util-endpoints/lib/aws/partitions.js");
  const text = fs.readFileSync(file, "utf8");
  const json = text.slice(text.indexOf("{"), text.lastIndexOf("}") + 1);
  return (JSON.parse(json) as { partitions: Partition[] }).partitions;
}

let cache: { partitions: readonly Partition[]; regions: readonly string[] } | undefined;
function data() {
  if (!cache) {
    const partitions = loadPartitions();
    // aws-global, aws-cn-global, …: endpoint pseudo-regions, not places to deploy.
    const regions = partitions.flatMap((p) => Object.keys(p.regions)).filter((r) => !r.endsWith("-global"));
    cache = { partitions, regions: [...new Set(regions)].sort() };
  }
  return cache;
}

/** Every region the installed AWS SDK knows, in every partition (aws, aws-cn, aws-us-gov, iso…), opt-in regions included. */
export function knownRegions(): readonly string[] {
  return data().regions;
}

/**
 * Why a region name is not an AWS region, with the closest known one as the fix, or undefined
 * when it is one. A name that fits a partition's pattern but is not listed may be a region newer
 * than the installed SDK: the fix says so.
 */
export function regionProblem(region: string): { message: string; fix: string } | undefined {
  const { partitions, regions } = data();
  if (partitions.length === 0) return FALLBACK_REGION.test(region) ? undefined : { message: `"${region}" is not an AWS region name`, fix: "use a region such as us-east-1" };
  if (regions.includes(region)) return undefined;
  const closest = closestRegion(region);
  const patterned = partitions.some((p) => new RegExp(p.regionRegex).test(region));
  return {
    message: `"${region}" is not an AWS region`,
    fix:
      (closest ? `use ${closest}, the closest AWS region name` : "use an AWS region such as us-east-1") +
      (patterned ? `; if ${region} is a region newer than the installed AWS SDK, update @aws-sdk/core` : ""),
  };
}

/** Used only if a future AWS SDK moves its partitions data: the shape of every region name so far. */
const FALLBACK_REGION = /^[a-z]{2,4}(-[a-z]+)+-\d+$/;

/** The known region with the smallest edit distance to `name`. */
export function closestRegion(name: string): string | undefined {
  let best: { region: string; distance: number } | undefined;
  for (const region of data().regions) {
    const distance = editDistance(name, region);
    if (!best || distance < best.distance) best = { region, distance };
  }
  // Three edits cover a wrong digit, a swapped pair and a missing hyphen, without matching far-off names.
  return best && best.distance <= 3 ? best.region : undefined;
}

/** Levenshtein distance, two rows at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
