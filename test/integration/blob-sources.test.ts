// Every blob source ferry reads from passes the same suite: the store, a real Distribution
// registry, a real peer listener.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ArchiveSource, readArchive } from "../../src/archive/source.ts";
import { packed } from "../../src/archive/test-support.ts";
import { PeerBlobs, peerCounters, startPeerServer, UpstreamAccess } from "../../src/peer/index.ts";
import { Metrics } from "../../src/observe/index.ts";
import { PeerSource } from "../../src/peer/index.ts";
import { Liveness, StaticMembership } from "../../src/peer/index.ts";
import { Puller } from "../../src/pull/index.ts";
import {
  putManifest,
  RegistryClient,
  RegistrySource,
  type Repository,
  uploadBlob,
} from "../../src/registry/index.ts";
import { Store, StoreSource } from "../../src/store/index.ts";
import {
  blobSourceConformance,
  type Content,
  content,
  type Fixtures,
  type ManifestFixtures,
  makeFixtures,
} from "../fixtures/blob-source-conformance.ts";
import { startRegistry } from "../fixtures/registry.ts";

const fixtures = makeFixtures();
const config = content(
  Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [] },
    }),
  ),
  "application/vnd.oci.image.config.v1+json",
);
const imageManifest = (mark: string): Content =>
  content(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: config.desc,
        layers: [fixtures.blob.desc],
        annotations: { mark },
      }),
    ),
    "application/vnd.oci.image.manifest.v1+json",
  );
/** The same manifest with one character changed: still a valid document, of the same size. */
const tampered = (m: Content): Buffer =>
  Buffer.from(m.bytes.toString("utf8").replace('"mark":"a"', '"mark":"b"'));
const manifests = (reference: string): ManifestFixtures => ({
  reference,
  manifest: imageManifest("named"),
  corrupt: imageManifest("a"),
});

/** Damage: other bytes of the same length. */
const other = (c: Content): Buffer => randomBytes(c.bytes.length);

async function filledStore(
  f: Fixtures,
  name?: string,
): Promise<{ store: Store; dir: string; m?: ManifestFixtures }> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-conformance-"));
  const store = await Store.open(join(dir, "store"));
  await store.writeBlob(f.blob.desc.digest, f.blob.bytes);
  await writeFile(store.blobPath(f.corrupt.desc.digest), other(f.corrupt));
  if (name === undefined) return { store, dir };
  const m = manifests(name);
  await store.writeBlob(m.manifest.desc.digest, m.manifest.bytes);
  await store.recordImage(name, m.manifest.desc, m.manifest.desc.digest);
  await writeFile(store.blobPath(m.corrupt.desc.digest), tampered(m.corrupt));
  return { store, dir, m };
}

blobSourceConformance("the store", fixtures, async () => {
  const { store, dir, m } = await filledStore(fixtures, "127.0.0.1:5000/conformance:v1");
  const source = new StoreSource(store);
  return {
    source,
    ...(m === undefined ? {} : { manifests: { ...m, source } }),
    close: () => rm(dir, { recursive: true, force: true }),
  };
});

blobSourceConformance("a Distribution registry", fixtures, async () => {
  const registry = await startRegistry();
  const client = new RegistryClient();
  const repo: Repository = { domain: registry.host, path: "conformance/image" };
  const upload = (c: Content) =>
    uploadBlob(client, repo, c.desc, async (s, e) => c.bytes.subarray(s, e));
  await upload(fixtures.blob);
  await upload(fixtures.corrupt);
  await upload(config);
  const m = manifests("v1");
  await putManifest(client, repo, "v1", m.manifest.desc.mediaType, m.manifest.bytes);
  await putManifest(client, repo, m.corrupt.desc.digest, m.corrupt.desc.mediaType, m.corrupt.bytes);
  // The registry's storage is damaged behind its back: it serves what its files hold.
  const data = (digest: string) =>
    join(
      registry.dir,
      "data/docker/registry/v2/blobs/sha256",
      digest.slice(7, 9),
      digest.slice(7),
      "data",
    );
  await writeFile(data(fixtures.corrupt.desc.digest), other(fixtures.corrupt));
  await writeFile(data(m.corrupt.desc.digest), tampered(m.corrupt));
  const source = new RegistrySource(client, repo);
  return {
    source,
    manifests: { ...m, source },
    close: async () => {
      await client.close();
      await registry.stop();
    },
  };
});

blobSourceConformance(
  "a peer's listener",
  fixtures,
  async () => {
    const { store, dir } = await filledStore(fixtures);
    const key = randomBytes(32);
    const registry = new RegistryClient();
    const counters = peerCounters(new Metrics());
    const liveness = new Liveness({ membership: new StaticMembership([]), self: "127.0.0.1:1" });
    const puller = new Puller({ registry, store });
    const server = await startPeerServer({
      host: "127.0.0.1",
      port: 0,
      key,
      store,
      fetcher: puller,
      source: new PeerSource({ liveness, key, counters, log: () => {} }),
      // The repository is public (a mirror's record says so): the upstream is never asked.
      access: new UpstreamAccess({ registry, servesPublicly: async () => true }),
      counters,
      log: () => {},
    });
    return {
      source: new PeerBlobs({
        peer: server.address,
        key,
        repository: { domain: "registry.invalid:5000", path: "conformance/image" },
      }),
      close: async () => {
        await server.close();
        await puller.close();
        await registry.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  { images: false }, // the peer protocol serves blobs only
);

blobSourceConformance("an archive, after its pass", fixtures, async () => {
  const dir = await mkdtemp(join(tmpdir(), "ferry-conformance-"));
  const store = await Store.open(join(dir, "store"));
  const m = manifests("127.0.0.1:5000/conformance:v1");
  const entry = (c: Content, name?: string) => ({
    ...c.desc,
    ...(name === undefined ? {} : { annotations: { "org.opencontainers.image.ref.name": name } }),
  });
  const index = { schemaVersion: 2, manifests: [entry(m.manifest, m.reference), entry(m.corrupt)] };
  const blobs = [fixtures.blob, fixtures.corrupt, config, m.manifest, m.corrupt];
  const archive = await packed([
    { name: "oci-layout", body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: "index.json", body: Buffer.from(JSON.stringify(index)) },
    ...blobs.map((c) => ({ name: `blobs/sha256/${c.desc.digest.slice(7)}`, body: c.bytes })),
  ]);
  const contents = await readArchive({
    store,
    input: Readable.from([archive]),
    source: "conformance.tar",
  });
  // The pass verified every entry; what it took is damaged afterwards, at rest.
  const damage = async (digest: string, bytes: Buffer) => {
    await rm(store.blobPath(digest), { force: true });
    await writeFile(store.blobPath(digest), bytes);
  };
  await damage(fixtures.corrupt.desc.digest, other(fixtures.corrupt));
  await damage(m.corrupt.desc.digest, tampered(m.corrupt));
  const source = new ArchiveSource(contents, store);
  return {
    source,
    manifests: { ...m, source },
    close: () => rm(dir, { recursive: true, force: true }),
  };
});
