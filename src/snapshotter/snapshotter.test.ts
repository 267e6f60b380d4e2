import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SnapshotError } from "./errors.ts";
import { remoteRequest } from "./labels.ts";
import { Snapshotter } from "./snapshotter.ts";

function refusal(err: unknown): string {
  assert.ok(err instanceof SnapshotError, String(err));
  return err.refusal;
}

describe("Snapshotter (overlay, no lazy layers)", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "ferry-snapshotter-"));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it("lays out active, committed and view snapshots as containerd's overlayfs snapshotter does", async () => {
    const s = await Snapshotter.open({ root: join(root, "layout") });
    const [base] = await s.prepare("extract-1", "", {});
    assert.equal(base?.type, "bind");
    assert.deepEqual(base?.options, ["rw", "rbind"]);
    await writeFile(join(base?.source ?? "", "file"), "one");
    await s.commit("layer-1", "extract-1", { a: "1" });
    assert.equal(s.stat("layer-1").kind, "committed");
    assert.deepEqual(s.stat("layer-1").labels, { a: "1" });
    await s.prepare("extract-2", "layer-1", {});
    await s.commit("layer-2", "extract-2", {});
    const [container] = await s.prepare("container", "layer-2", {});
    assert.equal(container?.type, "overlay");
    const lower = container?.options.find((o) => o.startsWith("lowerdir="));
    const fs = (name: string) => join(root, "layout", "snapshots", s.id(name), "fs");
    assert.equal(lower, `lowerdir=${fs("layer-2")}:${fs("layer-1")}`);
    assert.ok(container?.options.includes(`upperdir=${fs("container")}`));
    const [view] = await s.view("view", "layer-2", {});
    assert.deepEqual(view, { type: "overlay", source: "overlay", target: "", options: [lower] });
    const [oneParent] = await s.view("view-1", "layer-1", {});
    assert.deepEqual(oneParent?.options, ["ro", "rbind"]);
    assert.equal(oneParent?.source, fs("layer-1"));
    assert.deepEqual(s.mounts("container"), [container]);
    assert.equal((await s.usage("layer-1")).inodes, 2);
  });

  it("refuses what containerd expects refused, with the answer it tells apart", async () => {
    const s = await Snapshotter.open({ root: join(root, "refusals") });
    await s.prepare("a", "", {});
    assert.equal(await s.prepare("a", "", {}).catch(refusal), "already-exists");
    assert.equal(await s.prepare("b", "missing", {}).catch(refusal), "not-found");
    assert.equal(await s.prepare("b", "a", {}).catch(refusal), "invalid-argument");
    await s.view("v", "", {});
    assert.equal(await s.commit("c", "v", {}).catch(refusal), "failed-precondition");
    await s.commit("c", "a", {});
    assert.equal(await s.commit("c", "a", {}).catch(refusal), "not-found");
    await s.prepare("child", "c", {});
    assert.equal(await s.remove("c").catch(refusal), "failed-precondition");
    assert.equal(await s.update("c", {}, ["parent"]).catch(refusal), "invalid-argument");
    assert.throws(
      () => s.stat("nothing"),
      (err) => refusal(err) === "not-found",
    );
  });

  it("updates all labels, or only those the field mask names", async () => {
    const s = await Snapshotter.open({ root: join(root, "labels") });
    await s.prepare("k", "", { keep: "1", drop: "2" });
    assert.deepEqual((await s.update("k", { drop: "x", add: "3" }, ["labels.add"])).labels, {
      keep: "1",
      drop: "2",
      add: "3",
    });
    assert.deepEqual((await s.update("k", {}, ["labels.drop"])).labels, { keep: "1", add: "3" });
    assert.deepEqual((await s.update("k", { only: "y" }, [])).labels, { only: "y" });
  });

  it("finds its snapshots again after a restart; Remove and Cleanup delete their directories", async () => {
    const dir = join(root, "restart");
    const first = await Snapshotter.open({ root: dir });
    await first.prepare("x", "", {});
    await first.commit("x-committed", "x", { l: "v" });
    await first.prepare("y", "x-committed", {});
    const again = await Snapshotter.open({ root: dir });
    assert.deepEqual(again.list(), first.list());
    assert.deepEqual(await readdir(dir), ["metadata.json", "snapshots"]);
    await again.remove("y");
    // A directory no snapshot owns (a crash between mkdir and the record) goes at Cleanup.
    await mkdir(join(dir, "snapshots", "99", "fs"), { recursive: true });
    await again.cleanup();
    assert.deepEqual(await readdir(join(dir, "snapshots")), [again.id("x-committed")]);
    assert.deepEqual(
      (await Snapshotter.open({ root: dir })).list().map((i) => i.name),
      ["x-committed"],
    );
  });

  it("starts a snapshot empty even where a crash left a directory under its id", async () => {
    const dir = join(root, "crashed");
    // Taken before a crash, never recorded: the next snapshot gets the same id.
    await mkdir(join(dir, "snapshots", "1", "fs"), { recursive: true });
    await writeFile(join(dir, "snapshots", "1", "fs", "stale"), "left by a crash");
    const s = await Snapshotter.open({ root: dir });
    const [m] = await s.prepare("fresh", "", {});
    assert.equal(s.id("fresh"), "1");
    assert.deepEqual(await readdir(m?.source ?? ""), []);
  });

  it("refuses to mount a lazy layer's snapshot when it runs without lazy layers (--no-lazy)", async () => {
    const dir = join(root, "no-lazy");
    await mkdir(dir, { recursive: true });
    const remote = {
      reference: "r.example/app:1",
      digest: "sha256:aa",
      size: 10,
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      tocDigest: "sha256:bb",
    };
    const lazy = {
      id: "1",
      name: "chain",
      kind: "committed",
      labels: {},
      created: 1,
      updated: 1,
      remote,
    };
    await writeFile(
      join(dir, "metadata.json"),
      JSON.stringify({ version: 1, nextId: 2, snapshots: [lazy] }),
    );
    const s = await Snapshotter.open({ root: dir });
    await assert.rejects(
      s.prepare("container", "chain", {}),
      (err) => refusal(err) === "failed-precondition",
    );
  });

  it("says what is wrong with a metadata file that is not its own", async () => {
    const dir = join(root, "corrupt");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "metadata.json"), "{");
    await assert.rejects(
      Snapshotter.open({ root: dir }),
      (err: Error & { code?: string; hint?: string }) => {
        assert.equal(err.code, "FERRY_STORE_CORRUPT");
        assert.match(err.hint ?? "", /move it aside/);
        return true;
      },
    );
  });
});

describe("remoteRequest", () => {
  const target = { "containerd.io/snapshot.ref": "sha256:chain" };
  it("reads the labels ctr-remote rpull passes, TOC digest included", () => {
    assert.deepEqual(
      remoteRequest({
        ...target,
        "containerd.io/snapshot/remote/stargz.reference": "r.example/app:1",
        "containerd.io/snapshot/remote/stargz.digest": "sha256:layer",
        "containerd.io/snapshot/stargz/toc.digest": "sha256:toc",
      }),
      {
        target: "sha256:chain",
        reference: "r.example/app:1",
        layerDigest: "sha256:layer",
        tocDigest: "sha256:toc",
      },
    );
  });
  it("reads the labels containerd's CRI plugin passes", () => {
    assert.deepEqual(
      remoteRequest({
        ...target,
        "containerd.io/snapshot/cri.image-ref": "r.example/app:1",
        "containerd.io/snapshot/cri.layer-digest": "sha256:layer",
      }),
      {
        target: "sha256:chain",
        reference: "r.example/app:1",
        layerDigest: "sha256:layer",
        tocDigest: undefined,
      },
    );
  });
  it("is no request without a target, or without the image and layer", () => {
    assert.equal(
      remoteRequest({
        "containerd.io/snapshot/cri.image-ref": "a",
        "containerd.io/snapshot/cri.layer-digest": "b",
      }),
      undefined,
    );
    assert.equal(remoteRequest(target), undefined);
  });
});
