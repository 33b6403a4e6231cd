import { spawnSync } from "node:child_process";
import * as fs from "node:fs";

type Runner = (command: string, args: readonly string[]) => [string, string[]];

/**
 * Root reads and writes every file whatever its mode, so a check of what a user without those
 * rights sees runs its command as `nobody` through setpriv. Undefined (the check is skipped, with
 * a line saying why) unless the tests run as root and setpriv is installed, and unless `nobody`
 * can read every path in `needs`: a checkout in a private directory (mode 0700, as `mktemp -d`
 * makes) cannot be traversed by another user, so a check that needs files of the checkout is
 * skipped there rather than failing for a reason that is not the one it checks.
 */
export function unprivilegedRunner(check: string, needs: readonly string[] = []): Runner | undefined {
  const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => fs.existsSync(p));
  if (process.getuid?.() !== 0 || !setpriv) {
    console.warn(`skipped: ${check} needs root and setpriv to run as an unprivileged user`);
    return undefined;
  }
  const runner: Runner = (command, args) => [setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", command, ...args]];
  const unreadable = needs.find((p) => {
    const [cmd, args] = runner(process.execPath, ["-e", `require("node:fs").accessSync(${JSON.stringify(p)}, require("node:fs").constants.R_OK)`]);
    return spawnSync(cmd, args, { stdio: "ignore" }).status !== 0;
  });
  if (unreadable !== undefined) {
    console.warn(`skipped: ${check}: an unprivileged user cannot read ${unreadable} (the checkout is in a private directory, such as one made by mktemp -d)`);
    return undefined;
  }
  return runner;
}
