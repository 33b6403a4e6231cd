import { createRequire } from "node:module";

// cdktf is loaded on first use: `plan` and the manifest checks, which never meet a token, would
// otherwise pay ~100 ms to load it. Only construct props (inside a cdktf app) can hold tokens, and
// the constructs hand over the cdktf they use (see useCdktfTokens), so a bundle of them holds one.
let token: Pick<typeof import("cdktf").Token, "isUnresolved"> | undefined;
const Token = {
  isUnresolved(value: unknown): boolean {
    // cdktf's string tokens read `${TfToken[…]}` (lists `#{TfToken[…]}`); its number tokens are
    // doubles near -1.9e289: anything else is a plain value, without loading cdktf.
    if (typeof value === "string" && !value.includes("TfToken[")) return false;
    if (typeof value === "number" && Math.abs(value) < 1e280) return false;
    token ??= (createRequire(import.meta.url)("cdktf") as typeof import("cdktf")).Token;
    return token.isUnresolved(value);
  },
};

/** The constructs' cdktf `Token`: tokens are recognised by the cdktf that made them. */
export function useCdktfTokens(cdktfToken: Pick<typeof import("cdktf").Token, "isUnresolved">): void {
  token = cdktfToken;
}

/**
 * Lambda's fixed limits on a function's configuration, checked before anything is deployed.
 * Quotas: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html ("Function memory
 * allocation: 128 MB to 10,240 MB"; "Function timeout: 900 seconds"; "Function environment
 * variables: 4 KB, for all environment variables associated with the function, in aggregate").
 * Ephemeral storage: https://docs.aws.amazon.com/lambda/latest/dg/API_EphemeralStorage.html
 * ("Valid Range: Minimum value of 512. Maximum value of 10240"). Timeout's minimum of 1 s:
 * https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html (Timeout "Valid Range:
 * Minimum value of 1").
 */
export const LAMBDA_LIMITS = {
  memorySize: { min: 128, max: 10240, unit: "MB" },
  timeout: { min: 1, max: 900, unit: "s" },
  ephemeralStorage: { min: 512, max: 10240, unit: "MB" },
  /** Bytes of all keys and values together. */
  environmentBytes: 4096,
} as const;

export type LambdaRangeField = "memorySize" | "timeout" | "ephemeralStorage";

/** One Lambda setting outside what Lambda accepts. */
export interface LambdaLimitProblem {
  /** The setting: memorySize, timeout, ephemeralStorage or environment. */
  readonly field: LambdaRangeField | "environment";
  readonly message: string;
  readonly fix: string;
}

/** A function's settings as the manifest or a construct's props give them. */
export interface LambdaLimitInput {
  /** @default not checked */
  readonly memorySize?: number;
  /** @default not checked */
  readonly timeout?: number;
  /** @default not checked */
  readonly ephemeralStorage?: number;
  /**
   * Environment variables. A value that is not a string, or a string holding an unresolved CDKTF
   * token (`Token.isUnresolved`), has a size only known at apply time: it is left out of the sum,
   * so the check can only under-count, never refuse a configuration Lambda accepts.
   * @default {}
   */
  readonly environment?: Readonly<Record<string, unknown>>;
}

/** The message and fix for a value outside a Lambda range, shared by the manifest schema. */
export function rangeProblem(field: LambdaRangeField, value: number): Omit<LambdaLimitProblem, "field"> | undefined {
  const { min, max, unit } = LAMBDA_LIMITS[field];
  if (Number.isInteger(value) && value >= min && value <= max) return undefined;
  const range = `${min}–${max} ${unit}`;
  return {
    message: Number.isInteger(value) ? `is ${value} ${unit}, outside Lambda's range of ${range}` : `is ${value}; Lambda takes a whole number in ${range}`,
    fix: `set ${field} to a whole number from ${min} to ${max}`,
  };
}

/** The UTF-8 size of the environment's keys and values whose size is known now. */
export function environmentBytes(environment: Readonly<Record<string, unknown>>): number {
  let total = 0;
  for (const [key, value] of Object.entries(environment)) {
    total += Buffer.byteLength(key, "utf8");
    if (typeof value === "string" && !isUnresolvedToken(value)) total += Buffer.byteLength(value, "utf8");
  }
  return total;
}

/** Everything about a function's settings that Lambda would refuse at deploy time. */
export function lambdaLimitProblems(input: LambdaLimitInput): LambdaLimitProblem[] {
  const problems: LambdaLimitProblem[] = [];
  for (const field of ["memorySize", "timeout", "ephemeralStorage"] as const) {
    const value = input[field];
    if (typeof value !== "number" || isTokenNumber(value)) continue;
    const problem = rangeProblem(field, value);
    if (problem) problems.push({ field, ...problem });
  }
  const environment = input.environment ?? {};
  const bytes = environmentBytes(environment);
  if (bytes > LAMBDA_LIMITS.environmentBytes) {
    const largest = Object.entries(environment)
      .filter(([, v]) => typeof v === "string" && !isUnresolvedToken(v))
      .sort(([, a], [, b]) => Buffer.byteLength(b as string) - Buffer.byteLength(a as string))[0]?.[0];
    problems.push({
      field: "environment",
      message: `keys and values take ${bytes} bytes; Lambda allows ${LAMBDA_LIMITS.environmentBytes} bytes (4 KB) for all of a function's environment variables together`,
      fix: `shorten or remove variables${largest ? ` (the largest is ${largest})` : ""}, or keep large settings in SSM Parameter Store or S3 and pass their name`,
    });
  }
  return problems;
}

/** A string that holds a CDKTF token anywhere: its length is only known at apply time. */
function isUnresolvedToken(value: string): boolean {
  return Token.isUnresolved(value);
}

/** A number token (CDKTF encodes them as special doubles): its value is only known at apply time. */
function isTokenNumber(value: number): boolean {
  return Token.isUnresolved(value);
}
