import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Descriptor, type ImageManifest, MediaType } from "../oci/index.ts";
import { planArchive, type SavedImage, splitRepoTag } from "./save-plan.ts";

const d = (c: string, mediaType: string = MediaType.ociLayerGzip): Descriptor => ({
  mediaType,
  digest: `sha256:${c.repeat(64)}`,
  size: c.charCodeAt(0),
});

function image(
  reference: string,
  manifest: string,
  layers: string[],
  repoTags: string[],
  extra: Partial<SavedImage> = {},
): SavedImage {
  const m: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: d(`${manifest === "1" ? "c" : "e"}`, MediaType.ociConfig),
    layers: layers.map((l) => d(l)),
  };
  return {
    reference,
    descriptor: {
      ...d(manifest, MediaType.ociManifest),
      platform: { os: "linux", architecture: "amd64" },
    },
    sourceDigest: d(manifest).digest,
    manifest: m,
    repoTags,
    dockerLoadable: true,
    ...extra,
  };
}

function json(plan: ReturnType<typeof planArchive>, name: string): unknown {
  const file = plan.files.find((f) => f.name === name);
  return file === undefined ? undefined : JSON.parse(file.bytes.toString("utf8"));
}

describe("planArchive", () => {
  it("writes each blob once and one index.json entry per name", () => {
    const plan = planArchive([
      image("docker.io/library/app:1", "1", ["a", "b"], ["app:1"]),
      image("docker.io/library/app:latest", "1", ["a", "b"], ["app:latest"]),
      image("127.0.0.1:5000/x/y:2", "2", ["a", "f"], ["127.0.0.1:5000/x/y:2"]),
    ]);
    assert.deepEqual(
      plan.blobs.map((b) => b.digest[7]),
      ["1", "c", "a", "b", "2", "e", "f"],
    );
    assert.deepEqual(json(plan, "oci-layout"), { imageLayoutVersion: "1.0.0" });
    const index = json(plan, "index.json") as { mediaType: string; manifests: Descriptor[] };
    assert.equal(index.mediaType, MediaType.ociIndex);
    assert.deepEqual(
      index.manifests.map((m) => [
        m.digest[7],
        m.annotations?.["org.opencontainers.image.ref.name"],
      ]),
      [
        ["1", "docker.io/library/app:1"],
        ["1", "docker.io/library/app:latest"],
        ["2", "127.0.0.1:5000/x/y:2"],
      ],
    );
    assert.equal(
      index.manifests[0]?.annotations?.["io.containerd.image.name"],
      "docker.io/library/app:1",
    );
    assert.deepEqual(index.manifests[0]?.platform, { os: "linux", architecture: "amd64" });
  });

  it("groups RepoTags by manifest in manifest.json and points at blob paths", () => {
    const plan = planArchive([
      image("docker.io/library/app:1", "1", ["a", "b"], ["app:1"]),
      image("docker.io/library/app:latest", "1", ["a", "b"], ["app:latest"]),
      image("h/x@sha256:...", "2", ["f"], []),
    ]);
    assert.deepEqual(json(plan, "manifest.json"), [
      {
        Config: `blobs/sha256/${"c".repeat(64)}`,
        RepoTags: ["app:1", "app:latest"],
        Layers: [`blobs/sha256/${"a".repeat(64)}`, `blobs/sha256/${"b".repeat(64)}`],
      },
      {
        Config: `blobs/sha256/${"e".repeat(64)}`,
        RepoTags: null,
        Layers: [`blobs/sha256/${"f".repeat(64)}`],
      },
    ]);
    assert.deepEqual(json(plan, "repositories"), {
      app: { "1": "b".repeat(64), latest: "b".repeat(64) },
    });
  });

  it("keeps the source digest as an annotation, and leaves non-images out of manifest.json", () => {
    const plan = planArchive([
      image("r/a:1", "1", ["a"], ["r/a:1"], { sourceDigest: d("9").digest, dockerLoadable: false }),
    ]);
    const index = json(plan, "index.json") as { manifests: Descriptor[] };
    assert.equal(index.manifests[0]?.annotations?.["dev.ferry.source-digest"], d("9").digest);
    assert.deepEqual(json(plan, "manifest.json"), []);
    assert.equal(json(plan, "repositories"), undefined);
  });
});

describe("splitRepoTag", () => {
  it("splits at the last colon after the last slash", () => {
    assert.deepEqual(splitRepoTag("127.0.0.1:5000/x/y:v1"), ["127.0.0.1:5000/x/y", "v1"]);
    assert.deepEqual(splitRepoTag("busybox:1"), ["busybox", "1"]);
    assert.deepEqual(splitRepoTag("host:5000/x"), ["host:5000/x", "latest"]);
  });
});
