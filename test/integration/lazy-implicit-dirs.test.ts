// `ferry lazy ls` shows directories a layer names only through its files (`etc/h0.txt`, no
// `etc/` entry), in plain layers and in eStargz ones (ferry convert keeps the layer's entries).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { describeRun, ferry, isolatedEnv, lines, removeDir, tempDir } from "./cli.ts";

describe("ferry lazy ls of directories no layer names", () => {
  let registry: RunningRegistry;
  let home: string;
  let plainRef: string;
  let lazyRef: string;

  before(async () => {
    [registry, home] = await Promise.all([startRegistry(), tempDir("lazy-implicit")]);
    plainRef = `${registry.host}/implicit/app:plain`;
    lazyRef = `${registry.host}/implicit/app:esgz`;
    await pushImage(registry.host, "implicit/app", "plain", {
      layers: [
        [
          { path: "etc/h0.txt", content: "h0\n" },
          { path: "usr/share/doc/readme", content: "deep\n" },
          { path: "opt", type: "dir", mode: 0o700 },
        ],
        [{ path: "etc/h1.txt", content: "h1\n" }],
      ],
    });
    const converted = await ferry(["convert", "--estargz", plainRef, lazyRef], isolatedEnv(home));
    assert.equal(converted.code, 0, describeRun(converted));
  });

  after(async () => {
    await Promise.all([registry?.stop(), removeDir(home)]);
  });

  /** `ferry lazy ls REF [PATH] [-R]`: each line's mode and path. */
  async function ls(args: string[]): Promise<string[]> {
    const r = await ferry(["lazy", "ls", ...args], isolatedEnv(home));
    assert.equal(r.code, 0, describeRun(r));
    return lines(r.stdout).map((l) => {
      const fields = l.split(/ +/);
      return `${fields[0]} ${fields[3]}`;
    });
  }

  for (const kind of ["plain", "eStargz"] as const) {
    const ref = () => (kind === "plain" ? plainRef : lazyRef);

    test(`${kind}: / lists etc and usr as directories, beside the explicit opt`, async () => {
      assert.deepEqual(await ls([ref(), "/"]), [
        "drwxr-xr-x /etc",
        "drwx------ /opt",
        "drwxr-xr-x /usr",
      ]);
    });

    test(`${kind}: /etc lists the files of both layers; -R shows every level`, async () => {
      assert.deepEqual(await ls([ref(), "/etc"]), [
        "-rw-r--r-- /etc/h0.txt",
        "-rw-r--r-- /etc/h1.txt",
      ]);
      assert.deepEqual(await ls(["-R", ref(), "/usr"]), [
        "drwxr-xr-x /usr/share",
        "drwxr-xr-x /usr/share/doc",
        "-rw-r--r-- /usr/share/doc/readme",
      ]);
    });

    test(`${kind}: cat of such a directory says it is one`, async () => {
      const r = await ferry(["lazy", "cat", ref(), "/etc"], isolatedEnv(home));
      assert.equal(r.code, 2, describeRun(r));
      assert.equal(r.stderr.split("\n")[0], "ferry: /etc is a directory, not a regular file");
    });
  }
});
