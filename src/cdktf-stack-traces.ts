import { inspect } from "node:util";
import stackTraceModule from "cdktf/lib/tokens/private/stack-trace.js";

type CaptureStackTrace = typeof stackTraceModule.captureStackTrace;

let original: CaptureStackTrace | undefined;

/**
 * Makes cdktf format each token's creation stack when it is read, instead of when the token is
 * created. cdktf 0.21 keeps, on every token and every nested-block reference of a provider
 * resource, the stack trace of its creation, formatted as text at once, for the one message that
 * prints it (a token that fails to resolve: "Object creation stack: at …"). A synth of a few
 * dozen images creates thousands of them and reads none; the formatting was a fifth of its
 * time. The frames are still captured when the token is created, so a message that reads them
 * shows the same lines as before.
 *
 * It changes cdktf's module for the whole process, so the images.yaml app (main.ts) calls it and
 * the constructs never do; a construct app may call it first thing. Calling it again does nothing.
 */
export function deferTokenStackTraces(): void {
  if (original) return;
  original = stackTraceModule.captureStackTrace;
  // cdktf's modules call it as `(0, stack_trace_1.captureStackTrace)()`: through this object, each time.
  stackTraceModule.captureStackTrace = captureStackTraceLazily;
}

/** Back to cdktf's own capture (for tests). */
export function restoreTokenStackTraces(): void {
  if (!original) return;
  stackTraceModule.captureStackTrace = original;
  original = undefined;
}

/** cdktf's captureStackTrace, whose lines are formatted on first use. */
export function captureStackTraceLazily(below?: Function): string[] {
  const holder: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = Number.MAX_SAFE_INTEGER;
    // V8 records the frames now and formats them the first time `stack` is read.
    Error.captureStackTrace(holder, below ?? captureStackTraceLazily);
  } finally {
    Error.stackTraceLimit = limit;
  }
  return linesOnFirstUse(() => (holder.stack ? holder.stack.split("\n").slice(1).map((line) => line.replace(/^\s*at\s+/, "")) : []));
}

/**
 * An array (to Array.isArray, JSON, util.inspect and every array method) whose elements are
 * computed when first read. The proxy's target is the array itself, filled then, so what inspects
 * the target directly (util.inspect does, for a proxy) sees the same lines.
 */
function linesOnFirstUse(compute: () => string[]): string[] {
  const lines: string[] = [];
  let computed = false;
  const real = () => {
    if (!computed) {
      computed = true;
      for (const line of compute()) lines.push(line);
    }
    return lines;
  };
  // util.inspect formats the array itself (not a copy) when this returns it: filled first.
  Object.defineProperty(lines, inspect.custom, { value: real });
  return new Proxy(lines, {
    get(_target, key) {
      const array = real();
      const value = Reflect.get(array, key, array);
      return typeof value === "function" && key !== inspect.custom ? value.bind(array) : value;
    },
    set: (_target, key, value) => Reflect.set(real(), key, value),
    has: (_target, key) => Reflect.has(real(), key),
    deleteProperty: (_target, key) => Reflect.deleteProperty(real(), key),
    ownKeys: () => Reflect.ownKeys(real()),
    getOwnPropertyDescriptor: (_target, key) => Reflect.getOwnPropertyDescriptor(real(), key),
  });
}
