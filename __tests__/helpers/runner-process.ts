import { spawn, type ChildProcess } from "node:child_process";

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the bundled runner (`runner.cjs`) as Terraform's local-exec would: a child process with
 * its own environment, in `cwd` (outside the repository, so the bundle cannot lean on
 * node_modules). `onStdout` sees the output so far, e.g. to signal the child mid-build.
 */
export function runRunner(
  cliFile: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  onStdout?: (soFar: string, child: ChildProcess) => void,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliFile, ...args], { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
      onStdout?.(stdout, child);
    });
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
