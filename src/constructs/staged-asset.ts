import * as fs from "node:fs";
import * as path from "node:path";
import { Construct } from "constructs";
import { Lazy, TerraformStack } from "cdktf";

export interface StagedAssetProps {
  /** The file or directory to ship with the stack. */
  readonly source: string;
  /**
   * A hash of its content (hex): the asset's path changes exactly when the content does. A
   * function is called when the path is first resolved (the source may be written until then).
   */
  readonly contentHash: string | (() => string);
  /** Whether the source is a file or a directory. @default what the file system says, at construction */
  readonly kind?: "file" | "directory";
  /** Called before the source is first read, to finish writing it (staging on worker threads). @default nothing */
  readonly ready?: () => void;
}

/** What an asset path whose hash is not known yet resolves to while cdktf prepares a stack (never written). */
const PREPARING = "assets/preparing";

/** cdktf calls this on constructs that write files during synth (the symbol cdktf's own assets use). */
const CUSTOM_SYNTHESIS = Symbol.for("cdktf/customSynthesis");

/**
 * A file or directory shipped in the stack's directory under `assets/<id>/<hash>/`, like cdktf's
 * TerraformAsset, but addressed by a hash we already have (TerraformAsset re-reads and hashes
 * every file at each synth) and hard-linked from our cache instead of copied where the file
 * system allows: an unchanged image costs no copy. The stack directory stays self-contained
 * (a hard link is an ordinary file), so what Terraform Cloud uploads is complete.
 */
export class StagedAsset extends Construct {
  private readonly source: string;
  private contentHash: string | (() => string);
  private readonly isDirectory: boolean;
  private ready?: () => void;

  constructor(scope: Construct, id: string, props: StagedAssetProps) {
    super(scope, id);
    this.source = path.resolve(props.source);
    this.contentHash = props.contentHash;
    this.isDirectory = props.kind ? props.kind === "directory" : fs.statSync(this.source).isDirectory();
    this.ready = props.ready;
    Object.defineProperty(this, CUSTOM_SYNTHESIS, {
      value: { onSynthesize: (session: { outdir: string; manifest: { outdir: string; forStack(stack: TerraformStack): { synthesizedStackPath: string } } }) => this.stage(session) },
      enumerable: false,
    });
  }

  /**
   * The asset's path relative to the stack directory, as Terraform should reference it. When the
   * hash is a function, a token: cdktf's preparing pass (which only looks for cross-stack
   * references) gets a stand-in, so the hash is asked for only when the stack is rendered.
   */
  get path(): string {
    if (typeof this.contentHash === "string") return this.resolvedPath();
    return Lazy.stringValue({ produce: (context) => (context.preparing ? PREPARING : this.resolvedPath()) });
  }

  /** The hash as the path shows it (the function's result is kept). */
  private get hash(): string {
    if (typeof this.contentHash !== "string") this.contentHash = this.contentHash();
    return this.contentHash.slice(0, 32).toUpperCase();
  }

  private resolvedPath(): string {
    const folder = path.posix.join("assets", TerraformStack.of(this).getLogicalId(this.node), this.hash);
    return this.isDirectory ? folder : path.posix.join(folder, path.basename(this.source));
  }

  private stage(session: { manifest: { outdir: string; forStack(stack: TerraformStack): { synthesizedStackPath: string } } }): void {
    this.ready?.();
    this.ready = undefined;
    const stack = TerraformStack.of(this);
    const stackDir = path.join(session.manifest.outdir, session.manifest.forStack(stack).synthesizedStackPath, "..");
    const named = path.join(stackDir, "assets", stack.getLogicalId(this.node));
    const target = path.join(stackDir, this.resolvedPath());
    // Other versions of this asset are stale: the stack references only this one.
    if (fs.existsSync(named)) {
      for (const name of fs.readdirSync(named)) if (name !== this.hash) fs.rmSync(path.join(named, name), { recursive: true, force: true });
    }
    if (!this.isDirectory) return linkFile(this.source, target);
    // A directory linked by an earlier synth is checked by its directories' signatures (a file
    // added, removed or replaced changes its directory's), not file by file: thousands of files
    // in a base image's context would cost two stats each per stack and synth. The record sits
    // outside the stack's directory, which must hold only what Terraform needs.
    const marker = path.join(session.manifest.outdir, ".staged-assets", `${stack.node.id}--${stack.getLogicalId(this.node)}.json`);
    if (linkedBefore(marker, this.hash, target)) return;
    fs.rmSync(marker, { force: true });
    linkTree(this.source, target);
    fs.mkdirSync(path.dirname(marker), { recursive: true });
    fs.writeFileSync(marker, JSON.stringify({ hash: this.hash, directories: directorySignatures(target) }));
  }
}

type Signatures = [string, string, string, string][];

/** Every directory of a tree, with its mtime, ctime and inode (ns, as strings). */
function directorySignatures(root: string): Signatures {
  const out: Signatures = [];
  const visit = (rel: string) => {
    const st = fs.lstatSync(path.join(root, rel), { bigint: true });
    out.push([rel, String(st.mtimeNs), String(st.ctimeNs), String(st.ino)]);
    for (const child of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) if (child.isDirectory()) visit(path.join(rel, child.name));
  };
  visit("");
  return out;
}

function linkedBefore(marker: string, hash: string, target: string): boolean {
  let recorded: Signatures;
  try {
    const data = JSON.parse(fs.readFileSync(marker, "utf8")) as { hash: string; directories: Signatures };
    if (data.hash !== hash || !Array.isArray(data.directories)) return false;
    recorded = data.directories;
  } catch {
    return false;
  }
  try {
    return recorded.every(([rel, mtime, ctime, ino]) => {
      const st = fs.lstatSync(path.join(target, rel), { bigint: true });
      return st.isDirectory() && String(st.mtimeNs) === mtime && String(st.ctimeNs) === ctime && String(st.ino) === ino;
    });
  } catch {
    return false;
  }
}

/** Hard-links (or, across file systems, copies) a file unless the target already is that file. */
function linkFile(source: string, target: string): void {
  const from = fs.statSync(source);
  try {
    const to = fs.statSync(target);
    if (to.ino === from.ino && to.dev === from.dev) return;
    fs.rmSync(target, { force: true });
  } catch {
    fs.mkdirSync(path.dirname(target), { recursive: true });
  }
  try {
    fs.linkSync(source, target);
  } catch {
    fs.copyFileSync(source, target);
    fs.chmodSync(target, from.mode & 0o777);
  }
}

/** Hard-links a file to a path that was free a moment ago; anything else (taken since, another file system) as linkFile does it. */
function linkNew(source: string, target: string): void {
  try {
    fs.linkSync(source, target);
  } catch {
    linkFile(source, target);
  }
}

function linkTree(source: string, target: string, fresh = false): void {
  // A directory made here holds nothing yet: its entries are linked without looking first (a
  // cold synth links thousands of files), and nothing stale needs removing.
  if (fresh) fs.mkdirSync(target);
  else fresh = fs.mkdirSync(target, { recursive: true }) !== undefined;
  const wanted = new Set<string>();
  for (const child of fs.readdirSync(source, { withFileTypes: true })) {
    if (!fresh) wanted.add(child.name);
    const from = path.join(source, child.name);
    const to = path.join(target, child.name);
    if (child.isDirectory()) linkTree(from, to, fresh);
    else if (child.isSymbolicLink()) {
      if (!fresh) fs.rmSync(to, { force: true });
      fs.symlinkSync(fs.readlinkSync(from), to);
    } else if (fresh) linkNew(from, to);
    else linkFile(from, to);
  }
  if (fresh) return;
  for (const name of fs.readdirSync(target)) if (!wanted.has(name)) fs.rmSync(path.join(target, name), { recursive: true, force: true });
}
