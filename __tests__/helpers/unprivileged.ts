import * as fs from "node:fs";

/**
 * Root reads and writes every file whatever its mode, so a check of what a user without those
 * rights sees runs its command as `nobody` through setpriv. Undefined (the check is skipped, with
 * a warning naming it) unless the tests run as root and setpriv is installed.
 */
export function unprivilegedRunner(check: string): ((command: string, args: readonly string[]) => [string, string[]]) | undefined {
  const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => fs.existsSync(p));
  if (process.getuid?.() !== 0 || !setpriv) {
    console.warn(`skipped: ${check} needs root and setpriv to run as an unprivileged user`);
    return undefined;
  }
  return (command, args) => [setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", command, ...args]];
}
