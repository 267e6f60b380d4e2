// The command line's own mistakes: exit 2, one plain line and a hint, a close match for a typo.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { main } from "./main.ts";
import type { Output } from "./output.ts";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const output: Output = {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    isTTY: false,
    columns: 80,
  };
  const code = await main(argv, output);
  return { code, out, err };
}

/** Quotes come in pairs: no raw parser text such as `'-- "--x"`. */
function assertBalancedQuotes(text: string): void {
  for (const quote of ['"', "'", "`"]) {
    assert.equal(text.split(quote).length % 2, 1, `unbalanced ${quote} in ${JSON.stringify(text)}`);
  }
}

describe("ferry's command line", () => {
  it("an unknown command: did you mean the closest one", async () => {
    const r = await run("pul", "alpine");
    assert.equal(r.code, 2);
    assert.equal(
      r.err,
      'ferry: unknown command "pul"\n  hint: did you mean `ferry pull`? `ferry --help` lists the commands\n',
    );
    const far = await run("xyzzy");
    assert.equal(far.code, 2);
    assert.equal(
      far.err,
      'ferry: unknown command "xyzzy"\n  hint: run `ferry --help` to list the commands\n',
    );
  });

  it("an unknown flag: did you mean the command's closest flag, in plain words", async () => {
    const r = await run("pull", "--concurency", "3", "alpine");
    assert.equal(r.code, 2);
    assert.equal(
      r.err,
      "ferry pull: unknown option --concurency; did you mean --concurrency?\n  hint: run `ferry pull --help`\n",
    );
    assertBalancedQuotes(r.err);
    const short = await run("pull", "-z", "alpine");
    assert.equal(short.err.split("\n")[0], "ferry pull: unknown option -z");
  });

  it("a flag without its value, a value for a switch, an argument too many: plain words", async () => {
    const cases: Array<[string[], string]> = [
      [["pull", "alpine", "--platform"], "ferry pull: --platform needs a value"],
      [
        ["pull", "--platform", "--json", "alpine"],
        'ferry pull: --platform needs a value, not the option --json (a value that starts with "-" is written --platform=VALUE)',
      ],
      [["pull", "--json=yes", "alpine"], "ferry pull: --json takes no value"],
      [["images", "extra"], 'ferry images: unexpected argument "extra": this command takes none'],
    ];
    for (const [argv, line] of cases) {
      const r = await run(...argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.equal(r.err.split("\n")[0], line);
      assert.match(r.err, /\n {2}hint: run `ferry \w+ --help`\n$/);
      assertBalancedQuotes(r.err);
    }
  });

  it("ferry help CMD shows CMD's help; ferry help NOSUCH suggests", async () => {
    const help = await run("help", "pull");
    const flag = await run("pull", "--help");
    assert.equal(help.code, 0);
    assert.match(help.out, /^Usage: ferry pull /);
    assert.equal(help.out, flag.out);
    const typo = await run("help", "imagse");
    assert.equal(typo.code, 2);
    assert.match(typo.err, /did you mean `ferry images`\?/);
    const bare = await run("help");
    assert.equal(bare.code, 0);
    assert.match(bare.out, /^Usage: ferry COMMAND/);
  });

  it("-v, --version and version print the version", async () => {
    for (const flag of ["-v", "--version", "version"]) {
      const r = await run(flag);
      assert.equal(r.code, 0, flag);
      assert.match(r.out, /^ferry \d+\.\d+\.\d+\n {2}commit: +\S+\n/);
    }
  });
});
