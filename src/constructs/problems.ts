import { TerraformElement, TerraformOutput, TerraformStack, Token } from "cdktf";
import { Construct, type IConstruct } from "constructs";
import type { Problem } from "../manifest/checks.ts";
import { AppImages } from "./app-images.ts";

/** One problem of a construct's props, with the construct's path. */
export interface ConstructProblem extends Problem {
  /** The construct whose props are wrong. */
  readonly path: string;
}

/**
 * Every problem of an App's image constructs, reported at once before anything is written: one
 * line each, `<construct path>: <field>: <what>. Fix: <how>`. Its stack is the message alone: a
 * Node stack trace would only point into this library.
 */
export class ImageConstructsError extends Error {
  constructor(readonly problems: readonly ConstructProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ImageConstructsError";
    Object.defineProperty(this, "stack", { value: `${this.name}: ${problems.length} problem${problems.length === 1 ? "" : "s"} in the App's image constructs:\n${this.message}`, enumerable: false });
  }
}

export function formatProblem(p: ConstructProblem): string {
  return `${p.path}: ${p.field ? `${p.field}: ` : ""}${p.message}. Fix: ${p.fix}`;
}

/** An AWS name the App creates: two of one kind in one account and region collide. */
interface AwsName {
  readonly kind: AwsNameKind;
  readonly name: string;
  /** Region the name lives in; undefined where it is a token, which may be any region. IAM role names are global. */
  readonly region: string | undefined;
  /** The construct the name belongs to. */
  readonly path: string;
  /** The prop that sets it, for the fix. */
  readonly prop: string;
}

export type AwsNameKind = "ECR repository" | "CodeBuild project" | "CloudWatch log group" | "IAM role" | "Lambda function" | "S3 object";

/**
 * The problems and AWS names of one App's image constructs. Constructs record what is wrong
 * instead of throwing, so one synth shows every problem; the check runs when the first stack with
 * images is prepared, which is before cdktf writes any stack.
 */
export class ImageProblems {
  private static readonly byRoot = new WeakMap<IConstruct, ImageProblems>();
  private static readonly checkedStacks = new WeakSet<TerraformStack>();

  static of(scope: IConstruct): ImageProblems {
    const root = scope.node.root;
    let found = ImageProblems.byRoot.get(root);
    if (!found) {
      found = new ImageProblems();
      ImageProblems.byRoot.set(root, found);
    }
    return found;
  }

  /**
   * Makes sure `scope`'s stack runs the App's check before it is synthesized. The check is
   * rendered where it is created: under `parent` (the stack's ImageBuildEnvironment, as its first
   * child) it runs before the environment's own policies are rendered.
   */
  static checkBeforeSynth(scope: IConstruct, parent?: Construct): void {
    const stack = TerraformStack.of(scope);
    if (ImageProblems.checkedStacks.has(stack)) return;
    ImageProblems.checkedStacks.add(stack);
    new ImageChecks(parent ?? stack, "lambda-image-builds-checks");
  }

  private readonly problems: ConstructProblem[] = [];
  private readonly names: AwsName[] = [];
  private readonly outputs: { scope: IConstruct; output: TerraformOutput }[] = [];

  /** Records problems of the construct at `scope`. */
  add(scope: IConstruct, problems: readonly Problem[]): void {
    for (const p of problems) this.problems.push({ ...p, path: scope.node.path });
    ImageProblems.checkBeforeSynth(scope);
  }

  get count(): number {
    return this.problems.length;
  }

  /** Records an AWS name the construct at `scope` creates; tokens (decided at apply) are not checked. */
  addName(scope: IConstruct, kind: AwsNameKind, name: string, region: string | undefined, prop: string): void {
    if (Token.isUnresolved(name)) return;
    this.names.push({ kind, name, region: region !== undefined && Token.isUnresolved(region) ? undefined : region, path: scope.node.path, prop });
    ImageProblems.checkBeforeSynth(scope);
  }

  /** Records a Terraform output an image adds, so another element of the same name is refused. */
  addOutput(scope: IConstruct, output: TerraformOutput): void {
    this.outputs.push({ scope, output });
    ImageProblems.checkBeforeSynth(scope);
  }

  /** Every problem, collisions included, in the order the constructs were defined. */
  all(): ConstructProblem[] {
    return [...this.problems, ...this.collisions(), ...this.outputCollisions()];
  }

  private outputCollisions(): ConstructProblem[] {
    // Each stack's outputs by name, found once per stack however many images it has.
    const byStack = new Map<TerraformStack, Map<string, TerraformOutput[]>>();
    const outputsOf = (stack: TerraformStack) => {
      let byName = byStack.get(stack);
      if (!byName) {
        byName = new Map();
        for (const c of stack.node.findAll()) if (c instanceof TerraformOutput) byName.set(c.friendlyUniqueId, [...(byName.get(c.friendlyUniqueId) ?? []), c]);
        byStack.set(stack, byName);
      }
      return byName;
    };
    return this.outputs.flatMap(({ scope, output }) => {
      const other = outputsOf(TerraformStack.of(output)).get(output.friendlyUniqueId)?.find((c) => c !== output);
      return other
        ? [{ path: scope.node.path, field: "outputs", message: `the image's output "${output.friendlyUniqueId}" has the name of ${other.node.path}, and Terraform keeps only one of them`, fix: "set outputs: false on the image, or give the other output another id" }]
        : [];
    });
  }

  /** For a problem found only while a stack renders (after the check): throws it with every other problem of the App. */
  fail(scope: IConstruct, problems: readonly Problem[]): never {
    this.add(scope, problems);
    this.check();
    throw new Error("unreachable: a problem was just recorded");
  }

  /** Throws every problem of the App at once, if there are any. */
  check(): void {
    const all = this.all();
    if (all.length) throw reportable(new ImageConstructsError(all));
  }

  private collisions(): ConstructProblem[] {
    const found: ConstructProblem[] = [];
    const seen = new Map<string, AwsName[]>();
    for (const n of this.names) {
      const key = `${n.kind}\0${n.name}`;
      const earlier = (seen.get(key) ?? []).filter((e) => n.kind === "IAM role" || e.region === undefined || n.region === undefined || e.region === n.region);
      const clash = earlier.find((e) => e.path !== n.path) ?? earlier[0];
      if (clash) {
        found.push({
          path: n.path,
          field: n.prop,
          message: `${n.kind} name "${displayName(n)}" is also used by ${clash.path}${clash.path === n.path ? ` (${clash.prop})` : ""}; both would be created in one account${n.kind === "IAM role" ? "" : " and region"}, and the second fails half-way through the apply`,
          fix: `give one of them another name (its ${n.prop} prop or a different construct id${n.kind === "IAM role" || n.kind === "Lambda function" ? "" : ", or another namePrefix on its ImageBuildEnvironment"})`,
        });
      }
      seen.set(key, [...(seen.get(key) ?? []), n]);
    }
    return found;
  }
}

function displayName(n: AwsName): string {
  return n.kind === "S3 object" ? n.name.slice(n.name.indexOf("\0") + 1) : n.name;
}

/**
 * Where nobody else handles uncaught errors (a plain `node`, `ts-node` or `tsx` run of an app, as
 * `cdktf synth` makes), the problems are printed as they are, one line each, and the process
 * exits 1: a stack trace and a source excerpt would only point into this library. Other errors,
 * and runs under a test runner or a handler of the user's, behave as before.
 */
function reportable(error: ImageConstructsError): ImageConstructsError {
  if (process.listenerCount("uncaughtException") === 0) {
    const handler = (thrown: unknown) => {
      process.removeListener("uncaughtException", handler);
      if (thrown instanceof ImageConstructsError) {
        process.stderr.write(`${thrown.stack}\n`);
        process.exit(1);
      }
      process.nextTick(() => {
        throw thrown;
      });
    };
    process.on("uncaughtException", handler);
  }
  return error;
}

/**
 * A Terraform element that writes nothing: cdktf renders every element of every stack when it
 * prepares the stacks, before it writes any, so rendering this one is where the App is checked
 * (and where the archives are scheduled to be finished before the first stack is written).
 * `Testing.synth` renders it too.
 */
class ImageChecks extends TerraformElement {
  constructor(scope: Construct, id: string) {
    super(scope, id);
  }

  toTerraform(): Record<string, never> {
    ImageProblems.of(this).check();
    AppImages.finishBeforeWriting(this);
    return {};
  }
}

/** An image built FROM a base image of another App: its builds would wait on a stack never synthesized. */
export function otherAppProblem(scope: IConstruct, base: IConstruct): Problem | undefined {
  if (base.node.root === scope.node.root) return undefined;
  return {
    field: "baseImage",
    message: `${base.node.path} belongs to another cdktf App, whose stacks this App never synthesizes or deploys`,
    fix: "define the base image in this App (a base image can be shared by the stacks of one App)",
  };
}
