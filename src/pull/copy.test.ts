import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { digestOf } from "../digest/index.ts";
import { isFerryError } from "../observe/index.ts";
import { type Descriptor, MediaType } from "../oci/index.ts";
import { planCopy } from "./copy-blobs.ts";
import type { ImageSource, SourceManifest } from "./copy-source.ts";
import { formatPlace, parsePlace } from "./copy.ts";

const blob = (seed: string, size: number, mediaType: string): Descriptor => ({
  mediaType,
  digest: digestOf(seed),
  size,
});

function manifest(name: string, mediaType: string = MediaType.ociManifest): SourceManifest {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: blob(`${name}-config`, 10, MediaType.ociConfig),
      layers: [
        blob(`${name}-l1`, 100, MediaType.ociLayerGzip),
        blob("shared", 50, MediaType.ociLayerGzip),
      ],
    }),
  );
  return { bytes, mediaType, digest: digestOf(bytes) };
}

function indexOf(children: Array<[SourceManifest, string]>): SourceManifest {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: children.map(([m, arch]) => ({
        mediaType: m.mediaType,
        digest: m.digest,
        size: m.bytes.length,
        platform: { os: "linux", architecture: arch },
      })),
    }),
  );
  return { bytes, mediaType: MediaType.ociIndex, digest: digestOf(bytes) };
}

/** A source over manifests held in memory: planning reads manifests only. */
function source(top: SourceManifest, others: SourceManifest[] = []): ImageSource {
  const byDigest = new Map(others.map((m) => [m.digest, m]));
  return {
    repo: undefined,
    top: async () => top,
    manifest: async (desc) => {
      const m = byDigest.get(desc.digest);
      if (m === undefined) throw new Error(`no ${desc.digest}`);
      return m.bytes;
    },
    stage: async () => {
      throw new Error("planning stages nothing");
    },
  };
}

describe("places", () => {
  it("reads store:REF as the store and anything else as a registry", () => {
    const stored = parsePlace("store:registry.test/app:v1");
    assert.equal(stored.kind, "store");
    assert.equal(stored.ref.path, "app");
    assert.equal(formatPlace(stored), "store:registry.test/app:v1");
    const remote = parsePlace("registry.test:5000/team/app@" + digestOf("x"));
    assert.equal(remote.kind, "registry");
    assert.equal(remote.ref.domain, "registry.test:5000");
    assert.equal(formatPlace(remote), `registry.test:5000/team/app@${digestOf("x")}`);
  });
});

describe("planCopy", () => {
  const amd = manifest("amd64");
  const arm = manifest("arm64");
  const index = indexOf([
    [amd, "amd64"],
    [arm, "arm64"],
  ]);

  it("copies a single image as itself: put under the tag, config then layers", async () => {
    const plan = await planCopy(source(amd), {});
    assert.equal(plan.top.digest, amd.digest);
    assert.equal(plan.images.length, 1);
    assert.equal(plan.images[0]?.byDigest, false);
    assert.deepEqual(
      plan.images[0]?.blobs.map((b) => b.kind),
      ["config", "layer", "layer"],
    );
  });

  it("with all, puts every platform by digest and the index (same bytes) under the tag", async () => {
    const plan = await planCopy(source(index, [amd, arm]), { all: true });
    assert.equal(plan.top.digest, index.digest);
    assert.ok(plan.top.bytes.equals(index.bytes));
    assert.deepEqual(
      plan.images.map((i) => [i.manifest.digest, i.byDigest, i.platform]),
      [
        [amd.digest, true, "linux/amd64"],
        [arm.digest, true, "linux/arm64"],
      ],
    );
  });

  it("without all, the chosen platform's manifest becomes the top, its digest kept", async () => {
    const plan = await planCopy(source(index, [amd, arm]), {
      platform: { os: "linux", architecture: "arm64" },
    });
    assert.equal(plan.top.digest, arm.digest);
    assert.ok(plan.top.bytes.equals(arm.bytes));
    assert.equal(plan.images.length, 1);
    assert.equal(plan.images[0]?.byDigest, false);
  });

  it("refuses an index inside an index, and a platform the index lacks", async () => {
    const outer = indexOf([[index, "amd64"]]);
    await assert.rejects(planCopy(source(outer, [index]), { all: true }), (err) =>
      isFerryError(err, "FERRY_UNSUPPORTED_MANIFEST"),
    );
    await assert.rejects(
      planCopy(source(index, [amd, arm]), { platform: { os: "linux", architecture: "s390x" } }),
      (err) => isFerryError(err, "FERRY_NO_MATCHING_PLATFORM"),
    );
  });
});
