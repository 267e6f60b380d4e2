import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { parseReference } from "../reference/index.ts";
import {
  honoursPinLabel,
  type LabelOutcome,
  type PinOperations,
  pinImage,
} from "./containerd-pin.ts";
import type { CriImage } from "./cri-messages.ts";

const REF = parseReference("127.0.0.1:5000/app:1");
const IMAGE: CriImage = {
  id: "sha256:" + "c".repeat(64),
  repoTags: ["127.0.0.1:5000/app:1"],
  repoDigests: ["127.0.0.1:5000/app@sha256:" + "d".repeat(64)],
  pinned: false,
};

function fake(runtimeVersion: string, outcome: LabelOutcome, pinnedAfter = Infinity) {
  const labelled: string[] = [];
  let asked = 0;
  const ops: PinOperations = {
    image: async () => ({ ...IMAGE, pinned: asked++ >= pinnedAfter }),
    version: async () => ({ runtimeName: "containerd", runtimeVersion, runtimeApiVersion: "v1" }),
    label: async (name, key, value) => {
      labelled.push(`${name} ${key}=${value}`);
      return outcome;
    },
  };
  return { ops, labelled };
}

describe("pinImage", () => {
  it("labels every name and waits for the CRI to report the pin", async () => {
    const { ops, labelled } = fake("v1.7.20", "labelled", 2);
    assert.equal(await pinImage(ops, REF), true);
    assert.deepEqual(labelled, [
      `${IMAGE.repoTags[0]} io.cri-containerd.pinned=pinned`,
      `${IMAGE.repoDigests[0]} io.cri-containerd.pinned=pinned`,
      `${IMAGE.id} io.cri-containerd.pinned=pinned`,
    ]);
  });

  it("says false at once where the label is not honoured or cannot be set", async () => {
    assert.equal(await pinImage(fake("1.6.20~ds1", "labelled").ops, REF), false);
    assert.equal(await pinImage(fake("v2.0.0", "unsupported").ops, REF), false);
  });

  it("refuses an image the runtime does not have", async () => {
    const { ops } = fake("v1.7.0", "labelled");
    ops.image = async () => undefined;
    await assert.rejects(pinImage(ops, REF), (err) => isFerryError(err, "FERRY_IMAGE_NOT_FOUND"));
  });

  it("knows which containerd reads the label", () => {
    const v = (runtimeName: string, runtimeVersion: string) =>
      honoursPinLabel({ runtimeName, runtimeVersion, runtimeApiVersion: "v1" });
    assert.equal(v("containerd", "v1.6.33"), false);
    assert.equal(v("containerd", "1.7.0"), true);
    assert.equal(v("containerd", "v2.1.0"), true);
    assert.equal(v("cri-o", "1.30.0"), true);
  });
});
