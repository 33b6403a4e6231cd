// Retry with capped exponential backoff and full jitter. The SDK clients are created with
// maxAttempts: 1 so that this is the only retry layer: one policy, one place that logs retries,
// and a base delay tests can shrink.

export interface RetryPolicy {
  baseMs: number;
  capMs: number;
  /** Total attempts including the first. */
  maxAttempts: number;
  random?: () => number;
  /**
   * How long an access-denied answer is retried before the run's build has started: the roles and
   * policies a first apply creates may not be visible yet (see IAM_SETTLE_MS). @default IAM_SETTLE_MS
   */
  iamSettleMs?: number;
}

/**
 * IAM is eventually consistent: "the change must be replicated across IAM, which can take some
 * time", and AWS advises verifying that changes have propagated before workflows depend on them
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
 * A first apply creates the build starter's role and policy (and the CodeBuild role) seconds
 * before the first calls that need them, so an AccessDenied then may only mean "not yet". AWS
 * gives no upper bound; two minutes is what the Terraform AWS provider waits for IAM propagation.
 * Only the calls before the build has started get this grace: once a build runs, the permissions
 * were visible, and a later AccessDenied is a real one.
 */
export const IAM_SETTLE_MS = 120_000;

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 500, capMs: 20_000, maxAttempts: 8, iamSettleMs: IAM_SETTLE_MS };

const THROTTLING = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "SlowDown",
]);

const TRANSIENT_NETWORK = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "ECONNABORTED",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

interface SdkLikeError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

export function isThrottling(err: unknown): boolean {
  const e = err as SdkLikeError;
  return !!e && (THROTTLING.has(e.name ?? "") || e.$metadata?.httpStatusCode === 429);
}

/** Throttling, 5xx and network resets are worth retrying; auth and validation errors never are. */
export function isRetryable(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as SdkLikeError;
  if (e.name === "AbortError") return false;
  if (isThrottling(err)) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  if (TRANSIENT_NETWORK.has(e.code ?? "") || TRANSIENT_NETWORK.has(e.name ?? "")) return true;
  return e.name === "TimeoutError" || e.name === "RequestTimeout" || e.name === "RequestTimeoutException";
}

/** AWS refused the call for lack of permission (`AccessDeniedException` from CodeBuild, ECR and CloudWatch Logs; `AccessDenied` elsewhere). */
export function isAccessDenied(err: unknown): boolean {
  const e = err as SdkLikeError;
  return !!e && typeof e === "object" && ["AccessDeniedException", "AccessDenied"].some((n) => e.name === n || e.code === n);
}

/** Full jitter: uniform in [0, min(cap, base * 2^attempt)). `attempt` starts at 0. */
export function backoffDelay(attempt: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** attempt);
  return Math.floor((policy.random ?? Math.random)() * ceiling);
}

export class AbortedError extends Error {
  override name = "AbortError";
  constructor(readonly reason?: unknown) {
    super("aborted");
  }
}

/** setTimeout that rejects with AbortedError as soon as `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortedError(signal.reason));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export async function withRetry<T>(
  what: string,
  fn: () => Promise<T>,
  opts: { policy: RetryPolicy; signal?: AbortSignal; onRetry?: (what: string, err: unknown, delayMs: number) => void },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (opts.signal?.aborted) throw new AbortedError(opts.signal.reason);
      if (!isRetryable(err) || attempt + 1 >= opts.policy.maxAttempts) throw err;
      const delay = backoffDelay(attempt, opts.policy);
      opts.onRetry?.(what, err, delay);
      await sleep(delay, opts.signal);
    }
  }
}
