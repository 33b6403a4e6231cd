// The images.yaml app defers the formatting of cdktf's token creation stacks to when they are
// read. What a user sees must not change: a token that fails to resolve still names where it was
// created, with the same lines cdktf's own capture gives.
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { App, Lazy, TerraformOutput, TerraformStack, Testing, Token } from "cdktf";
import stackTraceModule from "cdktf/lib/tokens/private/stack-trace.js";
import { captureStackTraceLazily, deferTokenStackTraces, restoreTokenStackTraces } from "../src/cdktf-stack-traces.ts";

const cdktfCapture = stackTraceModule.captureStackTrace;

afterEach(() => restoreTokenStackTraces());

describe("deferred token stack traces", () => {
  it("gives the lines cdktf's own capture gives, when they are read", () => {
    // Both captured through one call site, so every frame above it is the same.
    const probe = (capture: typeof cdktfCapture) => capture(probe);
    const [eager, lazy] = [cdktfCapture, captureStackTraceLazily].map((capture) => probe(capture));
    expect(eager!.length).toBeGreaterThan(2);
    expect(eager![0]).toContain("cdktf-stack-traces.test.ts");
    expect(Array.isArray(lazy)).toBe(true);
    expect(lazy!.length).toBe(eager!.length);
    expect([...lazy!]).toEqual(eager);
    expect(lazy!.join("\n")).toBe(eager!.join("\n"));
    expect(JSON.parse(JSON.stringify(lazy))).toEqual(eager);
  });

  it("shows its lines to console.log and util.inspect, read or not", () => {
    const probe = (capture: typeof cdktfCapture) => capture(probe);
    const [eager, unread, read] = [cdktfCapture, captureStackTraceLazily, captureStackTraceLazily].map((capture) => probe(capture));
    expect(read!.length).toBe(eager!.length);
    expect(inspect(unread)).toBe(inspect(eager));
    expect(inspect(read)).toBe(inspect(eager));
    expect(inspect({ creationStack: unread }, { depth: 0 })).toBe(inspect({ creationStack: eager }, { depth: 0 }));
  });

  it("is what cdktf's tokens use once deferred, and undone by restore", () => {
    deferTokenStackTraces();
    deferTokenStackTraces(); // a second call keeps the first's original
    expect(stackTraceModule.captureStackTrace).toBe(captureStackTraceLazily);
    restoreTokenStackTraces();
    expect(stackTraceModule.captureStackTrace).toBe(cdktfCapture);
  });

  it("still names where a token that fails to resolve was created", () => {
    deferTokenStackTraces();
    const app = Testing.app();
    const stack = new TerraformStack(app, "s");
    const failing = Lazy.stringValue({ produce: () => { throw new Error("no value yet"); } }); // created here
    new TerraformOutput(stack, "out", { value: failing });
    expect(Token.isUnresolved(failing)).toBe(true);
    let message = "";
    try {
      Testing.synth(stack);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("no value yet");
    const creation = message.slice(message.indexOf("Object creation stack:"));
    expect(creation).toMatch(/^Object creation stack:\n {2}at new LazyBase /);
    // The frame below cdktf's own is the line that created the token, in this file.
    expect(creation).toMatch(/\n {2}at Lazy\.stringValue [^\n]*\n {2}at [^\n]*cdktf-stack-traces\.test\.ts:\d+:/);
  });

  it("leaves synthesized output unchanged", () => {
    const synthOnce = () => {
      const app = new App({ outdir: "/nonexistent-not-written" });
      const stack = new TerraformStack(app, "s");
      const name = Lazy.stringValue({ produce: () => "value" });
      new TerraformOutput(stack, "out", { value: `prefix-${name}` });
      return Testing.synth(stack);
    };
    const before = synthOnce();
    deferTokenStackTraces();
    expect(synthOnce()).toBe(before);
  });
});
