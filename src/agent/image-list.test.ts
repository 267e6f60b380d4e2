import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type FerryError, isFerryError } from "../observe/index.ts";
import { entriesFromReferences, loadImageList, parseImageList } from "./index.ts";

/** The entries as [reference, platform, required]. */
function parsed(text: string) {
  const list = parseImageList("images.yaml", text);
  return {
    images: list.images.map((e) => [
      `${e.ref.domain}/${e.ref.path}:${e.ref.tag}`,
      e.platform,
      e.required,
    ]),
    targets: list.targets,
  };
}

/** The FERRY_CONFIG_INVALID error for `text`. */
function failure(text: string): FerryError {
  try {
    parseImageList("images.yaml", text);
  } catch (err) {
    assert.ok(isFerryError(err, "FERRY_CONFIG_INVALID"), String(err));
    return err;
  }
  assert.fail("parsing should have failed");
}

/** "line:col key: message" of the first problem. */
function where(text: string): string {
  const e = failure(text);
  return `${e.fields.line}:${e.fields.column} ${e.fields.key ?? "-"}`;
}

describe("image lists: valid forms", () => {
  it("references and mappings, normalized; required by default; targets", () => {
    const list = parsed(`# what every node runs
images:
  - postgres:16
  - image: ghcr.io/org/app:1.2
    platform: linux/arm64/v8
    required: false
  - {image: localhost:5000/tool, required: true}
targets: [store, containerd, store]
`);
    assert.deepEqual(list.images, [
      ["docker.io/library/postgres:16", undefined, true],
      ["ghcr.io/org/app:1.2", "linux/arm64/v8", false],
      ["localhost:5000/tool:latest", undefined, true],
    ]);
    assert.deepEqual(list.targets, ["store", "containerd"]);
  });

  it("targets absent, or an empty images list", () => {
    assert.deepEqual(parsed("images:\n  - alpine\n").targets, undefined);
    assert.deepEqual(parsed("images: []\n").images, []);
  });

  it("plain text: one reference per line, # comments, blank lines", () => {
    const list = parsed(
      "# base\nalpine:3.20\n\n  busybox   # tools\nregistry.local:5000/a/b@sha256:" +
        "a".repeat(64) +
        "\n",
    );
    assert.deepEqual(list.images.slice(0, 2), [
      ["docker.io/library/alpine:3.20", undefined, true],
      ["docker.io/library/busybox:latest", undefined, true],
    ]);
    assert.equal(list.images.length, 3);
    assert.equal(list.targets, undefined);
    assert.deepEqual(parsed("").images, []);
  });

  it("keeps the text as written, and the source for messages", () => {
    const list = parseImageList("/etc/ferry/images.yaml", "images: [postgres:16]\n");
    assert.equal(list.source, "/etc/ferry/images.yaml");
    assert.equal(list.images[0]?.text, "postgres:16");
  });

  it("references from the command line are required", () => {
    const [entry] = entriesFromReferences(["alpine:3.20"]);
    assert.equal(entry?.required, true);
    assert.equal(entry?.ref.path, "library/alpine");
    assert.throws(() => entriesFromReferences(["Bad"]), { code: "FERRY_INVALID_REFERENCE" });
  });
});

describe("image lists: every mistake at its line and column", () => {
  it("invalid references, in YAML and in text", () => {
    assert.equal(where("images:\n  - alpine\n  - Alpine\n"), "3:5 images[1]");
    assert.equal(where("images:\n  - image: nope::x\n"), "2:12 images[0].image");
    const text = failure("alpine\n\n   UPPER:1\n");
    assert.equal(`${text.fields.line}:${text.fields.column}`, "3:4");
    assert.match(text.message, /^image list images\.yaml:3:4: invalid reference "UPPER:1": /);
    assert.match(text.hint ?? "", /lowercase/);
  });

  it("YAML syntax", () => {
    const e = failure("images:\n  - a\n  b: c\n");
    assert.equal(
      e.message,
      "image list images.yaml:3:1: not valid YAML: All mapping items must start at the same column",
    );
    assert.equal(e.hint, "fix the YAML syntax at that position");
  });

  it("the document's shape: a mapping with images", () => {
    assert.equal(where("- alpine\n"), "1:1 -");
    assert.equal(where("targets: [store]\n"), "1:1 images");
    assert.equal(where("images:\n  - alpine\nimage: x\n"), "3:1 image");
    assert.equal(where("images: alpine\n"), "1:9 images");
    assert.equal(where("images:\n"), "1:1 images");
  });

  it("items: strings or mappings with image, platform, required", () => {
    assert.equal(where("images:\n  - 42\n"), "2:5 images[0]");
    assert.equal(where("images:\n  - {platform: linux/amd64}\n"), "2:5 images[0].image");
    assert.equal(where("images:\n  - image: a\n    pull: always\n"), "3:5 images[0].pull");
    assert.equal(where("images:\n  - image: a\n    platform: linux\n"), "3:15 images[0].platform");
    assert.equal(
      where("images:\n  - image: a\n    platform: [linux]\n"),
      "3:15 images[0].platform",
    );
    assert.equal(where("images:\n  - image: a\n    required: yes\n"), "3:15 images[0].required");
  });

  it("targets: a list of docker, containerd, store", () => {
    assert.equal(where("images: []\ntargets: [store, podman]\n"), "2:18 targets[1]");
    assert.equal(where("images: []\ntargets: store\n"), "2:10 targets");
    assert.match(failure("images: []\ntargets: [cri]\n").hint ?? "", /docker, containerd, store/);
  });

  it("an image listed twice (by its normalized name)", () => {
    const e = failure("images:\n  - alpine\n  - docker.io/library/alpine:latest\n");
    assert.equal(`${e.fields.line}:${e.fields.column}`, "3:5");
    assert.match(e.message, /listed twice \(first at line 2\)/);
  });

  it("reports the first problem and counts the rest", () => {
    const e = failure("images:\n  - Bad\n  - 7\ntargets: [x]\n");
    assert.match(
      e.message,
      /^image list images\.yaml:2:5: images\[0\]: invalid reference "Bad": .* \(and 2 more\)$/,
    );
    assert.deepEqual(e.fields.more, [
      "3:5: images[1]: expected an image reference (a string)",
      '4:11: targets[0]: unknown target "x"',
    ]);
  });
});

describe("image lists: files", () => {
  it("reads a file; a missing one is FERRY_CONFIG_NOT_FOUND", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-list-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, "images.yaml");
    await writeFile(path, "images: [alpine]\n");
    assert.equal((await loadImageList(path)).images.length, 1);
    await assert.rejects(loadImageList(join(dir, "absent.yaml")), {
      code: "FERRY_CONFIG_NOT_FOUND",
    });
  });
});
