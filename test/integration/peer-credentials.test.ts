// What a node presents to peers as proof of access: the upstream registry's own bearer
// token only — never a mirror's credential (checked against another host), never a Basic
// password. Real registries (token auth, htpasswd), real pull engine.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Credential } from "../../src/config/index.ts";
import type { BlobLocator } from "../../src/pull/index.ts";
import { Puller } from "../../src/pull/index.ts";
import { RegistryClient } from "../../src/registry/index.ts";
import { Store } from "../../src/store/index.ts";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { type RunningTokenServer, startTokenServer } from "../fixtures/token-server.ts";

const USER = { user: "bob", password: "bob-secret-1" };
const creds = { creds: `${USER.user}:${USER.password}` };
const image = { layers: [[{ path: "data", size: 4096 }]], compression: "none" as const };

/** A blob source that records what it would present to a peer, and sends everything upstream. */
function recorder(seen: Array<string | undefined>): BlobLocator {
  return {
    locate: async (_repo, _desc, context) => {
      seen.push(context.authorization);
      return undefined;
    },
    failed: () => {},
    settled: () => {},
  };
}

describe("credentials presented to peers", () => {
  let tokens: RunningTokenServer;
  let upstream: RunningRegistry;
  let mirror: RunningRegistry;
  let basic: RunningRegistry;
  let pushed: BuiltImage;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-peer-creds-"));
    tokens = await startTokenServer({
      users: { [USER.user]: { password: USER.password, pull: ["private/*"], push: ["*"] } },
    });
    // The upstream and a mirror of it, both behind the same token service.
    [upstream, mirror, basic] = await Promise.all([
      startRegistry({ extraConfig: { auth: tokens.registryAuth() } }),
      startRegistry({ extraConfig: { auth: tokens.registryAuth() } }),
      startRegistry({ htpasswd: { user: USER.user, password: USER.password } }),
    ]);
    [pushed] = await Promise.all([
      pushImage(upstream.host, "private/app", "v1", image, creds),
      pushImage(mirror.host, "private/app", "v1", image, creds),
      pushImage(basic.host, "private/app", "v1", image, creds),
    ]);
  });
  after(async () => {
    await Promise.all([upstream?.stop(), mirror?.stop(), basic?.stop(), tokens?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function pullLayer(
    name: string,
    domain: string,
    mirrors: string[] | undefined,
  ): Promise<Array<string | undefined>> {
    const seen: Array<string | undefined> = [];
    const credential: Credential = { username: USER.user, password: USER.password };
    const client = new RegistryClient({
      credentials: { get: async () => credential },
      ...(mirrors === undefined ? {} : { settings: () => ({ mirrors }) }),
    });
    try {
      const store = await Store.open(join(dir, name));
      const puller = new Puller({ registry: client, store, blobLocator: recorder(seen) });
      const layer = pushed.layers[0];
      assert.ok(layer);
      const outcome = await puller.ensureBlob({ domain, path: "private/app" }, layer);
      assert.equal(outcome.downloaded, true);
      assert.ok(await store.hasBlob(layer.digest, layer.size));
    } finally {
      await client.close();
    }
    return seen;
  }

  it("presents the upstream's bearer token when the blob comes from the upstream itself", async () => {
    const seen = await pullLayer("direct", upstream.host, undefined);
    assert.ok(seen.length > 0);
    assert.ok(
      seen.every((a) => a?.startsWith("Bearer ")),
      JSON.stringify(seen.map((a) => a?.slice(0, 7))),
    );
  });

  it("presents nothing while a mirror is preferred (its token is for another host)", async () => {
    const seen = await pullLayer("mirrored", upstream.host, [mirror.url]);
    assert.ok(seen.length > 0);
    assert.deepEqual(
      seen,
      seen.map(() => undefined),
    );
  });

  it("never presents a Basic credential (a password)", async () => {
    const seen = await pullLayer("basic", basic.host, undefined);
    assert.ok(seen.length > 0);
    assert.deepEqual(
      seen,
      seen.map(() => undefined),
    );
  });
});
