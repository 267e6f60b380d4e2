// A registry client with an address guard (what `ferry mirror` uses) against a real registry:
// names resolve through the guard and connect to the address it checked, manifests and blob
// downloads alike; a name resolving to a metadata address is refused without connecting.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { LookupAddress } from "node:dns";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isFerryError } from "../../src/observe/index.ts";
import { Puller } from "../../src/pull/index.ts";
import { AddressGuard, RegistryClient } from "../../src/registry/index.ts";
import { Store } from "../../src/store/index.ts";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { removeDir, tempDir } from "./cli.ts";

/** Stands in for DNS: the names these tests use exist only here (nothing is connected to but 127.0.0.1). */
const NAMES: Record<string, string> = {
  "registry.test": "127.0.0.1",
  "metadata.test": "169.254.169.254",
};

async function resolve(host: string): Promise<LookupAddress[]> {
  const address = NAMES[host];
  if (address === undefined) throw Object.assign(new Error(`no ${host}`), { code: "ENOTFOUND" });
  return [{ address, family: 4 }];
}

describe("registry client with an address guard, against a real registry", () => {
  let registry: RunningRegistry;
  let image: BuiltImage;
  let work: string;
  let port: string;

  before(async () => {
    work = await tempDir("address-guard");
    registry = await startRegistry();
    port = new URL(registry.url).port;
    image = await pushImage(registry.host, "lib/app", "v1", {
      layers: [[{ path: "data/a.bin", size: 300_000 }]],
    });
  });
  after(async () => {
    await registry?.stop();
    await removeDir(work);
  });

  const client = () =>
    new RegistryClient({
      guard: new AddressGuard(resolve),
      settings: () => ({ plainHttp: true }),
    });

  it("pulls a manifest and a layer by a name the guard resolved to the registry's address", async () => {
    const registryClient = client();
    const store = await Store.open(join(work, "store"));
    const puller = new Puller({ registry: registryClient, store });
    try {
      const repo = { domain: `registry.test:${port}`, path: "lib/app" };
      const manifest = await registryClient.fetchManifest(repo, "v1");
      assert.equal(manifest.digest, image.manifestDigest);
      const layer = image.layers[0];
      assert.ok(layer);
      const got = await puller.ensureBlob(repo, layer);
      assert.equal(got.downloaded, true);
      const bytes = await readFile(store.blobPath(layer.digest));
      assert.equal(`sha256:${createHash("sha256").update(bytes).digest("hex")}`, layer.digest);
    } finally {
      await puller.close();
      await registryClient.close();
    }
  });

  it("refuses a registry whose name resolves to a metadata address (FERRY_ADDRESS_REFUSED)", async () => {
    const registryClient = client();
    try {
      await assert.rejects(
        registryClient.fetchManifest({ domain: `metadata.test:${port}`, path: "lib/app" }, "v1"),
        (err) =>
          isFerryError(err, "FERRY_ADDRESS_REFUSED") && /169\.254\.169\.254/.test(err.message),
      );
    } finally {
      await registryClient.close();
    }
  });
});
