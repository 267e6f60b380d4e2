import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { peerSettings } from "./options.ts";

describe("--peer-fanout", () => {
  let dir: string;
  let keyFile: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-peer-options-"));
    keyFile = join(dir, "fleet.key");
    await writeFile(keyFile, "a fleet key of thirty-two bytes!\n");
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const flags = (fanout?: string) => ({
    peers: "10.0.0.2:5001,10.0.0.3:5001",
    "peer-listen": "10.0.0.2:5001",
    "peer-key-file": keyFile,
    ...(fanout === undefined ? {} : { "peer-fanout": fanout }),
  });

  it("defaults to 4 peers a blob and takes a positive whole number", async () => {
    assert.equal((await peerSettings(flags()))?.fanOut, 4);
    assert.equal((await peerSettings(flags("1")))?.fanOut, 1);
  });

  it("refuses anything else, and the flag without --peers, with a usage error", async () => {
    for (const bad of ["0", "-1", "2.5", "many"])
      await assert.rejects(
        peerSettings(flags(bad)),
        (err) => isFerryError(err, "FERRY_INVALID_ARGUMENT") && /--peer-fanout/.test(err.message),
      );
    await assert.rejects(
      peerSettings({ "peer-fanout": "2" }),
      (err) => isFerryError(err, "FERRY_INVALID_ARGUMENT") && /need --peers/.test(err.message),
    );
  });
});
