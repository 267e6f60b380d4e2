// Shell completion and the man page, both made from the help text the commands print.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { describeRun, type FerryResult, ferry, removeDir, tempDir } from "./cli.ts";

const run = promisify(execFile);

async function ok(args: string[]): Promise<FerryResult> {
  const r = await ferry(args);
  assert.equal(r.code, 0, describeRun(r));
  return r;
}

describe("completion and man page", () => {
  let dir: string;
  let bashScript: string;

  before(async () => {
    dir = await tempDir("completion");
    bashScript = join(dir, "ferry.bash");
    await writeFile(bashScript, (await ok(["completion", "bash"])).stdout);
  });
  after(() => removeDir(dir));

  /** What bash offers after the words typed so far (the last one being completed). */
  async function bashCompletes(...typed: string[]): Promise<string[]> {
    const words = typed.map((w) => `'${w}'`).join(" ");
    const script = `source "$1"; complete -p ferry >&2; COMP_WORDS=(ferry ${words}); COMP_CWORD=${typed.length}; _ferry; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const { stdout, stderr } = await run("bash", ["-c", script, "bash", bashScript], {
      encoding: "utf8",
    });
    assert.match(stderr, /complete -o default -F _ferry ferry/);
    return stdout.split("\n").filter((l) => l !== "");
  }

  it("bash completes commands, each command's options, help topics and shells", async () => {
    assert.deepEqual(await bashCompletes("pu"), ["pull", "push"]);
    assert.deepEqual(await bashCompletes("images", "--f"), ["--format"]);
    assert.deepEqual(await bashCompletes("pull", "--pla"), ["--platform"]);
    assert.deepEqual(await bashCompletes("help", "ins"), ["inspect"]);
    assert.deepEqual(await bashCompletes("completion", ""), ["bash", "zsh", "fish"]);
    // An option another command's help mentions in passing is not offered.
    assert.deepEqual(await bashCompletes("images", "-v"), []);
  });

  it("zsh and fish scripts name every command and its options", async () => {
    const zsh = (await ok(["completion", "zsh"])).stdout;
    assert.match(zsh, /^#compdef ferry\n/);
    assert.match(zsh, /'images:list stored images'/);
    assert.match(zsh, /\(images\) opts=\(-q --format --json --store --quiet --help\) args=\(\)/);
    const fish = (await ok(["completion", "fish"])).stdout;
    assert.match(fish, /complete -c ferry -n __fish_use_subcommand -a tag -d 'give a stored image/);
    assert.match(fish, /complete -c ferry -n '__fish_seen_subcommand_from images' -l format\n/);
  });

  it("an unknown shell is a usage error that names the shells", async () => {
    const r = await ferry(["completion", "tcsh"]);
    assert.equal(r.code, 2, describeRun(r));
    assert.match(r.stderr, /completion takes one shell: bash, zsh, fish \(not "tcsh"\)/);
    assert.match(r.stderr, /hint: /);
  });

  it("the man page renders with groff, without warnings, and carries every command's help", async () => {
    const page = join(dir, "ferry.1");
    await writeFile(page, (await ok(["man"])).stdout);
    const checked = await run("groff", ["-man", "-Tutf8", "-ww", "-z", page], { encoding: "utf8" });
    assert.equal(checked.stderr, "", "groff warnings");
    const { stdout } = await run("man", ["-l", page], {
      encoding: "utf8",
      env: { ...process.env, MANPAGER: "cat", PAGER: "cat", MANWIDTH: "100" },
    });
    // Overstruck bold (a character, backspace, itself), if the formatter uses it.
    const text = stdout.replace(new RegExp(`.${String.fromCharCode(8)}`, "g"), "");
    assert.match(text, /^FERRY\(1\)/m);
    assert.match(text, /ferry - put container images on a machine before they are needed/);
    assert.match(text, /^ {3}ferry images\n/m);
    assert.match(text, /Usage: ferry images \[-q\] \[--format FORMAT \| --json\] \[--store DIR\]/);
    assert.match(text, /registry → registry/, "non-ASCII help text survives");
  });
});
