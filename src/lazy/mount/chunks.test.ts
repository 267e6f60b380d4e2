// The chunk store against a real registry (and a misbehaving proxy in front of it): what it
// keeps in memory and queues for the disk stays within its caps, a slow transfer is not cut
// while bytes keep arriving, and a read that joined a failed prefetch tries once itself.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as tick } from "node:timers/promises";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { type RunningProxy, startProxy } from "../../../test/fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../../../test/fixtures/registry.ts";
import { isFerryError } from "../../observe/index.ts";
import { Store } from "../../store/index.ts";
import { RegistryClient, type RetryPolicy } from "../../registry/index.ts";
import type { Chunk } from "../toc.ts";
import { ChunkStore } from "./chunks.ts";

const PIECE = 64 * 1024;
const SMALL = 8;
/** One member that takes ~3 s at 64 KiB/s. */
const SLOW_PIECE = 192 * 1024;
const REPO = "chunks/test";

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe("ChunkStore", { timeout: 60_000 }, () => {
  let registry: RunningRegistry;
  let home: string;
  let blob: { digest: string; size: number };
  const chunks: Chunk[] = [];
  const pieces = new Map<string, Buffer>();
  const proxies: RunningProxy[] = [];
  const clients: RegistryClient[] = [];

  before(async () => {
    [registry, home] = await Promise.all([
      startRegistry(),
      mkdtemp(join(tmpdir(), "ferry-chunks-")),
    ]);
    // Incompressible pieces, each its own gzip member, back to back: the layout eStargz uses.
    const members: Buffer[] = [];
    let offset = 0;
    for (let i = 0; i <= SMALL; i++) {
      const piece = randomBytes(i === SMALL ? SLOW_PIECE : PIECE);
      const member = gzipSync(piece);
      const chunk = {
        offset,
        end: offset + member.length,
        innerOffset: 0,
        chunkOffset: 0,
        size: piece.length,
        digest: sha256(piece),
      };
      chunks.push(chunk);
      pieces.set(chunk.digest, piece);
      members.push(member);
      offset += member.length;
    }
    const bytes = Buffer.concat(members);
    blob = { digest: sha256(bytes), size: bytes.length };
    const started = await fetch(`${registry.url}/v2/${REPO}/blobs/uploads/`, { method: "POST" });
    assert.equal(started.status, 202);
    const location = new URL(started.headers.get("location") ?? "", registry.url);
    location.searchParams.set("digest", blob.digest);
    const put = await fetch(location, {
      method: "PUT",
      body: bytes,
      headers: { "content-type": "application/octet-stream" },
    });
    assert.equal(put.status, 201);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(proxies.map((p) => p.stop()));
    await registry?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  const small = () => chunks.slice(0, SMALL).map((chunk, i) => ({ chunk, path: `f${i}` }));

  function store(
    name: string,
    options: {
      host?: string;
      memoryBytes?: number;
      writeBacklogBytes?: number;
      fetchTimeoutMs?: number;
      retry?: RetryPolicy;
    } = {},
  ): ChunkStore {
    const registryClient = new RegistryClient({
      settings: () => ({ mirrors: [], plainHttp: true }),
      ...(options.retry === undefined ? {} : { retry: options.retry }),
    });
    clients.push(registryClient);
    return new ChunkStore({
      registry: registryClient,
      repository: { domain: options.host ?? registry.host, path: REPO },
      layers: [blob],
      cacheDir: join(home, name),
      fetchTimeoutMs: options.fetchTimeoutMs ?? 10_000,
      ...(options.memoryBytes === undefined ? {} : { memoryBytes: options.memoryBytes }),
      ...(options.writeBacklogBytes === undefined
        ? {}
        : { writeBacklogBytes: options.writeBacklogBytes }),
    });
  }

  it("keeps the memory cache within its cap when chunks on their way to disk are read", async () => {
    const cap = PIECE + PIECE / 2; // room for one chunk
    const s = store("memory", { memoryBytes: cap });
    await s.prefetchRun(0, small());
    // Right after the prefetch most chunks are evicted from memory but still queued for disk.
    const reads = small().map(({ chunk, path }) => s.get(0, chunk, path));
    assert.ok(s.memoryHeld() <= cap, `memory holds ${s.memoryHeld()} bytes, cap ${cap}`);
    assert.equal(s.memoryHeld(), s.memoryBytes);
    const got = await Promise.all(reads);
    for (const [i, b] of got.entries())
      assert.ok(b.equals(pieces.get(chunks[i]?.digest ?? "") ?? Buffer.alloc(0)));
    await s.flushed();
    for (const { chunk, path } of small()) await s.get(0, chunk, path);
    assert.ok(s.memoryHeld() <= cap);
    assert.equal(s.memoryHeld(), s.memoryBytes);
  });

  it("bounds the disk cache's write backlog by bytes, dropping writes beyond it", async () => {
    const cap = 2 * PIECE;
    const s = store("backlog", { writeBacklogBytes: cap });
    await s.prefetchRun(0, small());
    assert.ok(s.writeBacklogBytes <= cap, `backlog ${s.writeBacklogBytes} bytes, cap ${cap}`);
    assert.ok(s.droppedWrites > 0, "eight chunks verified at once do not fit two slots");
    await s.flushed();
    assert.equal(s.writeBacklogBytes, 0);
    const files = await readdir(join(home, "backlog"));
    assert.equal(files.length, SMALL - s.droppedWrites);
    // A dropped write costs a refetch, never a wrong byte.
    for (const { chunk, path } of small())
      assert.ok((await s.get(0, chunk, path)).equals(pieces.get(chunk.digest) ?? Buffer.alloc(0)));
  });

  it("keeps cache files private to root; the store's sweep removes dead writers' temp files", async () => {
    const root = join(home, "store");
    const cacheDir = join(root, "ferry", "lazy-chunks");
    const registryClient = new RegistryClient({
      settings: () => ({ mirrors: [], plainHttp: true }),
    });
    clients.push(registryClient);
    const s = new ChunkStore({
      registry: registryClient,
      repository: { domain: registry.host, path: REPO },
      layers: [blob],
      cacheDir,
      fetchTimeoutMs: 10_000,
    });
    const [first] = small();
    assert.ok(first);
    await s.get(0, first.chunk, first.path);
    await s.flushed();
    assert.equal((await stat(cacheDir)).mode & 0o777, 0o700);
    const files = await readdir(cacheDir);
    assert.deepEqual(files, [first.chunk.digest.replace(":", "-")]);
    assert.equal((await stat(join(cacheDir, files[0] ?? ""))).mode & 0o777, 0o600);
    // What a `ferry mount` killed mid-write leaves behind: a temp file of a dead process.
    const dead = spawn("true");
    await new Promise((resolve) => dead.once("exit", resolve));
    await mkdir(cacheDir, { recursive: true });
    const leftover = join(cacheDir, `${files[0]}.tmp-${dead.pid}-0123abcd`);
    await writeFile(leftover, "partial");
    // The store's own sweep (run by `ferry prune`) removes it and nothing else.
    const store = await Store.open(root);
    assert.equal(await store.cleanStaleTemp(), 1);
    assert.deepEqual(await readdir(cacheDir), files);
  });

  it("times a fetch out when no bytes arrive, not when a slow transfer takes long", async () => {
    const slowProxy = await startProxy({ target: registry.host, bytesPerSecond: 64 * 1024 });
    const stallProxy = await startProxy({ target: registry.host, stallAfterBytes: 1000 });
    proxies.push(slowProxy, stallProxy);
    const slowChunk = chunks[SMALL] as Chunk;
    // ~3 s of transfer with bytes every ~50 ms: longer than the timeout, never idle that long.
    const slow = store("slow", { host: slowProxy.host, fetchTimeoutMs: 1000 });
    const bytes = await slow.get(0, slowChunk, "slow");
    assert.ok(bytes.equals(pieces.get(slowChunk.digest) ?? Buffer.alloc(0)));
    const stalled = store("stalled", { host: stallProxy.host, fetchTimeoutMs: 1000 });
    await assert.rejects(
      stalled.get(0, slowChunk, "stalled"),
      (err: unknown) =>
        isFerryError(err, "FERRY_TIMEOUT") && /no bytes received for 1000 ms/.test(String(err)),
    );
  });

  for (const kind of ["a run", "one wide chunk"] as const)
    it(`a read that joined a failed prefetch (${kind}) tries once with its own fetch`, async () => {
      const flaky = await startProxy({
        target: registry.host,
        failFirst: 1,
        failWith: { status: 500 },
      });
      proxies.push(flaky);
      const once: RetryPolicy = {
        maxAttempts: 1,
        baseDelayMs: 1,
        maxDelayMs: 1,
        maxElapsedMs: 1000,
      };
      const s = store(`joined-${kind.length}`, { host: flaky.host, retry: once });
      const [first] = small();
      assert.ok(first);
      const prefetch =
        kind === "a run" ? s.prefetchRun(0, [first]) : s.prefetchOne(0, first.chunk, first.path);
      prefetch.catch(() => undefined);
      while (!s.fetching(first.chunk.digest)) await tick();
      const read = s.get(0, first.chunk, first.path);
      await assert.rejects(prefetch);
      assert.ok((await read).equals(pieces.get(first.chunk.digest) ?? Buffer.alloc(0)));
      assert.ok(
        flaky.requests.some((r) => r.status === 500),
        "the prefetch met the failure",
      );
    });
});
