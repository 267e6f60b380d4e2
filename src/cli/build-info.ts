/**
 * Which ferry this is: the version, and the commit and date it was built from. The bundle and
 * the single executable carry them from the build (scripts/build.ts defines FERRY_BUILD);
 * sources read the checkout's package.json and ask git, or a build-info.json beside package.json
 * (the container image, which has no .git).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface BuildInfo {
  readonly version: string;
  /** The git commit, with "-dirty" when the tree had uncommitted changes; "unknown" without git. */
  readonly commit: string;
  /** When it was built (ISO 8601); from sources, the commit's date. */
  readonly date: string;
}

declare const FERRY_BUILD: BuildInfo | undefined;

const UNKNOWN = "unknown";

export function buildInfo(): BuildInfo {
  if (typeof FERRY_BUILD !== "undefined" && FERRY_BUILD !== undefined) return FERRY_BUILD;
  return sourceBuildInfo(fileURLToPath(new URL("../../", import.meta.url)));
}

/** What a checkout (or an unpacked package) at `root` says about itself. */
export function sourceBuildInfo(root: string): BuildInfo {
  const { version } = JSON.parse(readFileSync(`${root}/package.json`, "utf8")) as {
    version: string;
  };
  try {
    const recorded = JSON.parse(readFileSync(`${root}/build-info.json`, "utf8")) as BuildInfo;
    return { ...recorded, version };
  } catch {
    return { version, ...gitInfo(root) };
  }
}

/** The checkout's HEAD commit and its date, or "unknown" when `root` is not a git checkout. */
export function gitInfo(root: string): { commit: string; date: string } {
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", root, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  try {
    // An unpacked package inside someone else's repository must not report that repository.
    if (realpathSync(git("rev-parse", "--show-toplevel")) !== realpathSync(root)) throw root;
    const [commit = UNKNOWN, date = UNKNOWN] = git("log", "-1", "--format=%H %cI").split(" ");
    const dirty = git("status", "--porcelain", "--untracked-files=no") !== "";
    return { commit: dirty ? `${commit}-dirty` : commit, date };
  } catch {
    return { commit: UNKNOWN, date: UNKNOWN };
  }
}
