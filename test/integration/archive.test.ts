// `ferry save` / `ferry load` with the real tools on both sides: skopeo, containerd (ctr), dockerd.
import assert from "node:assert/strict";
import { busyboxLayer } from "../fixtures/busybox.ts";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import tar from "tar-stream";
import { type BuiltImage, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  type RunningContainerd,
  type RunningDockerd,
  startContainerd,
  startDockerd,
} from "../fixtures/runtimes.ts";
import {
  describeRun,
  entriesFor,
  FERRY_BIN,
  type FerryResult,
  ferry,
  ndjson,
  REF_NAME,
  readStoreIndex,
  removeDir,
  tempDir,
  verifiedBlobs,
} from "./cli.ts";

const execFileAsync = promisify(execFile);
const MESSAGE = "hello from a ferry archive\n";

interface Entry {
  name: string;
  body?: Buffer;
  type?: "file" | "directory" | "symlink";
  linkname?: string;
}

async function tarEntries(file: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  const extract = tar.extract();
  Readable.from([await readFile(file)]).pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    const { name, type } = entry.header;
    entries.push(type === "directory" ? { name, type } : { name, body: Buffer.concat(chunks) });
  }
  return entries;
}

async function writeTar(file: string, entries: Entry[]): Promise<void> {
  const pack = tar.pack();
  const out: Buffer[] = [];
  const reading = (async () => {
    for await (const c of pack) out.push(c as Buffer);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      const header = { name: e.name, type: e.type ?? "file", mtime: new Date(0) } as const;
      if (e.linkname !== undefined) pack.entry({ ...header, linkname: e.linkname }, cb);
      else if (e.body !== undefined) pack.entry(header, e.body, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await reading;
  await writeFile(file, Buffer.concat(out));
}

function json(entries: Entry[], name: string): unknown {
  const body = entries.find((e) => e.name === name)?.body;
  assert.ok(body, `${name} is in the archive`);
  return JSON.parse(body.toString("utf8"));
}

function assertExit(r: FerryResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

describe("ferry save and load with skopeo, containerd and dockerd", () => {
  let registry: RunningRegistry;
  let containerd: RunningContainerd;
  let dockerd: RunningDockerd;
  let work: string;
  let store: string;
  let busybox: BuiltImage;
  let other: BuiltImage;
  let archive: string;
  let bbRef: string;
  let otherRef: string;

  before(async () => {
    work = await tempDir("archive");
    const base = await busyboxLayer(["cat", "sh"]);
    const startRuntimes = async () => {
      containerd = await startContainerd();
      dockerd = await startDockerd(containerd.socket);
    };
    registry = await startRegistry();
    bbRef = `${registry.host}/archive/busybox:v1`;
    otherRef = `${registry.host}/archive/other:v1`;
    [busybox, other] = await Promise.all([
      pushImage(registry.host, "archive/busybox", "v1", {
        layers: [base, [{ path: "etc/message", content: MESSAGE }]],
      }),
      pushImage(registry.host, "archive/other", "v1", {
        layers: [base, [{ path: "etc/other", content: "other\n" }]],
      }),
      startRuntimes(),
    ]);
    store = join(work, "store");
    assertExit(await ferry(["pull", "-q", "--store", store, bbRef, otherRef]), 0);
    archive = join(work, "saved.tar");
    assertExit(await ferry(["save", "--store", store, bbRef, otherRef, "-o", archive]), 0);
  });

  after(async () => {
    await dockerd?.stop();
    await containerd?.stop();
    await registry?.stop();
    await removeDir(work);
  });

  test("one tar is an OCI layout and a docker archive, each shared blob once; stdout gives the same bytes", async () => {
    const entries = await tarEntries(archive);
    assert.deepEqual(json(entries, "oci-layout"), { imageLayoutVersion: "1.0.0" });
    const index = json(entries, "index.json") as {
      manifests: Array<{ digest: string; annotations: Record<string, string> }>;
    };
    assert.deepEqual(
      index.manifests.map((m) => [
        m.digest,
        m.annotations[REF_NAME],
        m.annotations["io.containerd.image.name"],
      ]),
      [
        [busybox.manifestDigest, bbRef, bbRef],
        [other.manifestDigest, otherRef, otherRef],
      ],
    );
    const blob = (d: string) => `blobs/sha256/${d.slice(7)}`;
    assert.deepEqual(json(entries, "manifest.json"), [
      {
        Config: blob(busybox.configDigest),
        RepoTags: [bbRef],
        Layers: busybox.layers.map((l) => blob(l.digest)),
      },
      {
        Config: blob(other.configDigest),
        RepoTags: [otherRef],
        Layers: other.layers.map((l) => blob(l.digest)),
      },
    ]);
    const blobs = entries.filter((e) => e.body !== undefined && e.name.startsWith("blobs/sha256/"));
    const expected = new Set(
      [busybox, other].flatMap((i) => [
        i.manifestDigest,
        i.configDigest,
        ...i.layers.map((l) => l.digest),
      ]),
    );
    assert.equal(expected.size, 7, "the base layer is shared");
    assert.deepEqual(blobs.map((e) => e.name).sort(), [...expected].map(blob).sort());

    const { stdout } = await execFileAsync(
      process.execPath,
      [FERRY_BIN, "save", "--store", store, bbRef, otherRef],
      {
        encoding: "buffer",
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    assert.deepEqual(stdout, await readFile(archive));
  });

  test("skopeo inspects and copies images out of it", async () => {
    const { stdout } = await execFileAsync("skopeo", [
      "inspect",
      `oci-archive:${archive}:${bbRef}`,
    ]);
    assert.equal((JSON.parse(stdout) as { Digest: string }).Digest, busybox.manifestDigest);
    const dir = join(work, "skopeo-copy");
    await execFileAsync("skopeo", [
      "--insecure-policy",
      "copy",
      "--quiet",
      `oci-archive:${archive}:${otherRef}`,
      `oci:${dir}:x`,
    ]);
    assert.ok((await verifiedBlobs(dir)).includes(other.manifestDigest));
  });

  test("ctr images import lists the images under their names with the same manifest digests", async () => {
    await containerd.ctr(["-n", "ferry-oci", "images", "import", archive]);
    const { stdout } = await containerd.ctr(["-n", "ferry-oci", "images", "ls"]);
    for (const [ref, image] of [
      [bbRef, busybox],
      [otherRef, other],
    ] as const) {
      const line = stdout.split("\n").find((l) => l.startsWith(`${ref} `));
      assert.ok(
        line?.includes(image.manifestDigest),
        `${ref} ${image.manifestDigest} in\n${stdout}`,
      );
    }
  });

  test("docker load takes it, runs the image, and ferry loads docker's own save (config digest = image ID)", async () => {
    const loaded = await dockerd.docker(["load", "-i", archive]);
    assert.match(loaded.stdout, new RegExp(`Loaded image: ${bbRef}`));
    const ran = await dockerd.docker([
      "run",
      "--rm",
      "--network",
      "none",
      bbRef,
      "cat",
      "/etc/message",
    ]);
    assert.equal(ran.stdout, MESSAGE);

    // docker save (Docker 20.10: <id>/layer.tar, <config>.json, manifest.json) → ferry load.
    await dockerd.docker(["tag", bbRef, "ferrytest/busybox:v1"]);
    const saved = join(work, "docker-save.tar");
    await dockerd.docker(["save", "-o", saved, "ferrytest/busybox:v1"]);
    const imageId = (
      await dockerd.docker(["inspect", "--format", "{{.Id}}", "ferrytest/busybox:v1"])
    ).stdout.trim();
    const store2 = join(work, "store-docker");
    const r = await ferry(["load", "--json", "--store", store2, "-i", saved]);
    assertExit(r, 0);
    const events = ndjson(r.stdout);
    const image = events.find((e) => e.event === "image");
    assert.equal(image?.reference, "docker.io/ferrytest/busybox:v1");
    assert.equal(image?.configDigest, imageId);
    assert.deepEqual(events.at(-1), {
      ...events.at(-1),
      event: "done",
      format: "docker",
      blobsWritten: 4,
      blobsSkipped: 0,
    });
    // containerd's importer builds the same manifest from the same archive.
    await containerd.ctr(["-n", "ferry-docker", "images", "import", saved]);
    const ls = (await containerd.ctr(["-n", "ferry-docker", "images", "ls"])).stdout;
    assert.match(ls, new RegExp(`^docker.io/ferrytest/busybox:v1 \\S+ ${image?.digest}`, "m"));

    // …and ferry's save of it is loadable by docker under its familiar name.
    await dockerd.docker(["rmi", "ferrytest/busybox:v1"]);
    const again = join(work, "again.tar");
    assertExit(await ferry(["save", "--store", store2, "ferrytest/busybox:v1", "-o", again]), 0);
    assert.deepEqual(
      (json(await tarEntries(again), "manifest.json") as Array<{ RepoTags: string[] }>)[0]
        ?.RepoTags,
      ["ferrytest/busybox:v1"],
    );
    assert.match(
      (await dockerd.docker(["load", "-i", again])).stdout,
      /Loaded image: ferrytest\/busybox:v1/,
    );
    assert.equal(
      (
        await dockerd.docker([
          "run",
          "--rm",
          "--network",
          "none",
          "ferrytest/busybox:v1",
          "cat",
          "/etc/message",
        ])
      ).stdout,
      MESSAGE,
    );
  });

  test("ferry loads skopeo's oci-archive from stdin with the registry's digest; load → save is bit-exact", async () => {
    const skopeoArchive = join(work, "skopeo.tar");
    await execFileAsync("skopeo", [
      "--insecure-policy",
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      `docker://${bbRef}`,
      `oci-archive:${skopeoArchive}:${bbRef}`,
    ]);
    const store3 = join(work, "store-skopeo");
    const { stdout } = await execFileAsync("sh", [
      "-c",
      `"${process.execPath}" "${FERRY_BIN}" load -q --store "${store3}" < "${skopeoArchive}"`,
    ]);
    assert.equal(stdout, `${bbRef}\n`);
    assert.equal((await entriesFor(store3, bbRef))[0]?.digest, busybox.manifestDigest);

    const store4 = join(work, "store-roundtrip");
    assertExit(await ferry(["load", "--store", store4, "-i", archive]), 0);
    const resaved = join(work, "resaved.tar");
    assertExit(await ferry(["save", "--store", store4, bbRef, otherRef, "-o", resaved]), 0);
    assert.deepEqual(await readFile(resaved), await readFile(archive));
  });

  test("bad archives are refused with exit 6, naming the entry; the store's index.json is unchanged", async () => {
    const entries = await tarEntries(archive);
    const layer = `blobs/sha256/${busybox.layers[1]?.digest.slice(7)}`;
    const evil = Buffer.from("evil\n");
    const flipped = entries.map((e) => {
      if (e.name !== layer || e.body === undefined) return e;
      const body = Buffer.from(e.body);
      body[100] = (body[100] ?? 0) ^ 1;
      return { name: e.name, body };
    });
    const cases: Array<[string, Entry[] | ((file: string) => Promise<void>), RegExp]> = [
      [
        "truncated",
        async (file) => writeFile(file, (await readFile(archive)).subarray(0, 1_000_000)),
        /truncated/,
      ],
      [
        "wrong content",
        flipped,
        new RegExp(`entry "${layer}": its content does not match its digest`),
      ],
      [
        "../escape",
        [{ name: "../escape", body: evil }, ...entries],
        /entry "\.\.\/escape": refused: it escapes the archive root/,
      ],
      [
        "absolute path",
        [...entries, { name: "/tmp/ferry-evil", body: evil }],
        /entry "\/tmp\/ferry-evil": refused: it is an absolute path/,
      ],
      [
        "symlink",
        [{ name: "index.json", type: "symlink", linkname: "/etc/passwd" }, ...entries],
        /entry "index\.json": refused: it is a symbolic link/,
      ],
      [
        "manifest.json pointing at a missing file",
        [
          {
            name: "manifest.json",
            body: Buffer.from(
              JSON.stringify([{ Config: "cfg.json", RepoTags: ["x:1"], Layers: [] }]),
            ),
          },
        ],
        /manifest\.json \[0\]\.Config names "cfg\.json", which is not in the archive/,
      ],
    ];
    const before = await readFile(join(store, "index.json"));
    for (const [label, make, message] of cases) {
      const file = join(work, `bad-${label.replace(/\W+/g, "-")}.tar`);
      if (typeof make === "function") await make(file);
      else await writeTar(file, make);
      const r = await ferry(["load", "--store", store, "-i", file]);
      assertExit(r, 6);
      assert.match(r.stderr, message, label);
      assert.match(r.stderr, /hint: /);
      assert.deepEqual(
        await readFile(join(store, "index.json")),
        before,
        `${label}: index.json unchanged`,
      );
    }
    assert.equal((await readStoreIndex(store)).manifests.length, 2);
  });
});
