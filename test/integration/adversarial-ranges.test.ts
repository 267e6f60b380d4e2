// Sources that answer a range request with another range: a 206 whose Content-Range names
// other bytes than were asked (of the right length, so counting bytes cannot tell) is
// refused, from a registry (lazy reads) and from a peer's listener alike.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { Readable } from "node:stream";
import { Metrics } from "../../src/observe/index.ts";
import type { BlobSource } from "../../src/oci/index.ts";
import {
  Liveness,
  PeerBlobs,
  PeerSource,
  peerCounters,
  startPeerServer,
  StaticMembership,
  UpstreamAccess,
} from "../../src/peer/index.ts";
import { Puller } from "../../src/pull/index.ts";
import {
  RegistryClient,
  RegistrySource,
  type Repository,
  uploadBlob,
} from "../../src/registry/index.ts";
import { Store } from "../../src/store/index.ts";
import { content } from "../fixtures/blob-source-conformance.ts";
import { type ProxyAnswer, type RunningProxy, startProxy } from "../fixtures/proxy.ts";
import { startRegistry, type RunningRegistry } from "../fixtures/registry.ts";

const blob = content(randomBytes(100_000));

/** Answers `bytes=S-E` with the bytes one further on, and a Content-Range that says so. */
function shifted(request: { method: string; range: string | undefined }): ProxyAnswer | undefined {
  const m = /^bytes=(\d+)-(\d+)$/.exec(request.range ?? "");
  if (request.method !== "GET" || m === null) return undefined;
  const start = Number(m[1]) + 1;
  const end = Number(m[2]) + 1;
  return {
    status: 206,
    headers: {
      "content-type": "application/octet-stream",
      "content-range": `bytes ${start}-${end}/${blob.desc.size}`,
    },
    body: blob.bytes.subarray(start, end + 1),
  };
}

async function read(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** Opening (or reading) [10, 20) through the shifting proxy fails with FERRY_SIZE_MISMATCH. */
async function refusesShiftedRange(source: BlobSource): Promise<void> {
  await assert.rejects(
    (async () => read(await source.open(blob.desc, { start: 10, end: 20 })))(),
    (err: { code?: string; message?: string }) => {
      assert.equal(err.code, "FERRY_SIZE_MISMATCH", err.message);
      assert.match(err.message ?? "", /bytes 11-20/);
      return true;
    },
  );
}

describe("a 206 with another Content-Range than asked", () => {
  const proxies: RunningProxy[] = [];
  let registry: RunningRegistry;
  let client: RegistryClient;
  let dir: string;

  before(async () => {
    registry = await startRegistry();
    client = new RegistryClient();
    dir = await mkdtemp(join(tmpdir(), "ferry-adversarial-ranges-"));
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await client?.close();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("from a registry (lazy reads)", async () => {
    const repo: Repository = { domain: registry.host, path: "adversarial/ranges" };
    await uploadBlob(client, repo, blob.desc, async (s, e) => blob.bytes.subarray(s, e));
    const proxy = await startProxy({ target: registry.host, answer: shifted });
    proxies.push(proxy);
    const source = new RegistrySource(client, { domain: proxy.host, path: repo.path });
    // The honest registry itself serves the range asked.
    const honest = await read(
      await new RegistrySource(client, repo).open(blob.desc, { start: 10, end: 20 }),
    );
    assert.ok(honest.equals(blob.bytes.subarray(10, 20)));
    await refusesShiftedRange(source);
  });

  test("from a peer's listener", async () => {
    const store = await Store.open(join(dir, "store"));
    await store.writeBlob(blob.desc.digest, blob.bytes);
    const key = randomBytes(32);
    const counters = peerCounters(new Metrics());
    const liveness = new Liveness({ membership: new StaticMembership([]), self: "127.0.0.1:1" });
    const puller = new Puller({ registry: client, store });
    const server = await startPeerServer({
      host: "127.0.0.1",
      port: 0,
      key,
      store,
      fetcher: puller,
      source: new PeerSource({ liveness, key, counters, log: () => {} }),
      access: new UpstreamAccess({ registry: client, servesPublicly: async () => true }),
      counters,
      log: () => {},
    });
    try {
      const proxy = await startProxy({ target: server.address, answer: shifted });
      proxies.push(proxy);
      const repository = { domain: "registry.invalid:5000", path: "adversarial/ranges" };
      const honest = new PeerBlobs({ peer: server.address, key, repository });
      assert.ok(
        (await read(await honest.open(blob.desc, { start: 10, end: 20 }))).equals(
          blob.bytes.subarray(10, 20),
        ),
      );
      await refusesShiftedRange(new PeerBlobs({ peer: proxy.host, key, repository }));
    } finally {
      await server.close();
      await puller.close();
    }
  });
});
