import { hostPlatform } from "../../oci/index.ts";
import { parseArgs } from "../args.ts";
import { buildInfo } from "../build-info.ts";
import { ExitCode, type Output } from "../output.ts";

export const versionUsage = `Usage: ferry version [--json]   (also: ferry --version [--json])

Show ferry's version, the git commit and date it was built from, the Node version it runs
on, and the platform.

Options:
  --json   print one JSON object: {version, commit, date, node, platform}
`;

export async function versionCommand(args: string[], output: Output): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: "boolean" } } });
  const { version, commit, date } = buildInfo();
  const report = {
    version,
    commit,
    date,
    node: process.version,
    platform: `${process.platform}/${hostPlatform().architecture}`,
  };
  if (values.json === true) {
    output.out(`${JSON.stringify(report)}\n`);
    return ExitCode.ok;
  }
  output.out(
    `ferry ${version}\n  commit:   ${commit}\n  built:    ${date}\n  node:     ${report.node}\n  platform: ${report.platform}\n`,
  );
  return ExitCode.ok;
}
