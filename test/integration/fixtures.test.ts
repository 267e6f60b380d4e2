// The test fixtures against the real registry and skopeo: what they compute is what gets served.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { type IncomingHttpHeaders, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import {
  type ImageSpec,
  MediaType,
  pushImage,
  pushIndex,
  writeImageLayout,
  writeLayoutFromTree,
} from "../fixtures/images.ts";
import { startProxy } from "../fixtures/proxy.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";

const execFileAsync = promisify(execFile);

function sha256(data: Buffer): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

async function inspectRaw(ref: string, creds?: string): Promise<Buffer> {
  const args = ["inspect", "--raw", "--tls-verify=false"];
  if (creds) args.push("--creds", creds);
  const { stdout } = await execFileAsync("skopeo", [...args, `docker://${ref}`], {
    encoding: "buffer",
  });
  return stdout;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

const small = (name: string): ImageSpec["layers"] => [
  [
    { path: "bin", type: "dir" },
    { path: "bin/sh", type: "symlink", linkname: "busybox" },
    { path: "etc/hostname", content: `${name}\n` },
  ],
  [{ path: `data/${name}.bin`, size: 20_000 }],
];

describe("fixtures against a real registry", () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await startRegistry();
  });
  after(async () => {
    await registry?.stop();
  });

  test("pushed images keep the digests the fixture computed", async () => {
    const specs: Array<[string, ImageSpec, string]> = [
      ["gzip", { layers: small("gzip") }, MediaType.ociLayerGzip],
      ["zstd", { layers: small("zstd"), compression: "zstd" }, MediaType.ociLayerZstd],
      ["plain", { layers: small("plain"), compression: "none" }, MediaType.ociLayer],
      ["docker", { layers: small("docker"), mediaTypes: "docker" }, MediaType.dockerLayerGzip],
    ];
    await Promise.all(
      specs.map(async ([name, spec, layerType]) => {
        const image = await pushImage(registry.host, `fixtures/${name}`, "v1", spec);
        const raw = await inspectRaw(`${registry.host}/fixtures/${name}:v1`);
        assert.equal(sha256(raw), image.manifestDigest, name);
        assert.deepEqual(raw, image.manifest);
        const manifest = JSON.parse(raw.toString()) as {
          mediaType: string;
          layers: Array<{ mediaType: string; digest: string; size: number }>;
        };
        assert.equal(manifest.mediaType, image.manifestMediaType);
        assert.deepEqual(
          manifest.layers.map((l) => l.mediaType),
          [layerType, layerType],
        );
        const blob = await get(
          `${registry.url}/v2/fixtures/${name}/blobs/${image.layers[1]?.digest}`,
        );
        assert.equal(blob.status, 200);
        assert.equal(sha256(blob.body), image.layers[1]?.digest);
        const config = await get(`${registry.url}/v2/fixtures/${name}/blobs/${image.configDigest}`);
        const parsed = JSON.parse(config.body.toString()) as {
          os: string;
          architecture: string;
          rootfs: { diff_ids: string[] };
        };
        assert.deepEqual(
          parsed.rootfs.diff_ids,
          image.layers.map((l) => l.diffId),
        );
        assert.equal(parsed.os, "linux");
        if (name === "plain") assert.equal(image.layers[1]?.digest, image.layers[1]?.diffId);
      }),
    );
    assert.equal(
      MediaType.dockerManifest,
      JSON.parse((await inspectRaw(`${registry.host}/fixtures/docker:v1`)).toString()).mediaType,
    );
  });

  test("a 2-platform index is pushed whole with --all", async () => {
    const platforms: ImageSpec[] = [
      { layers: small("amd64"), platform: { os: "linux", architecture: "amd64" } },
      { layers: small("arm64"), platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    ];
    const built = await pushIndex(registry.host, "fixtures/multi", "v1", platforms);
    const raw = await inspectRaw(`${registry.host}/fixtures/multi:v1`);
    assert.equal(sha256(raw), built.indexDigest);
    assert.equal(JSON.parse(raw.toString()).mediaType, MediaType.ociIndex);
    for (const image of built.images) {
      const child = await inspectRaw(`${registry.host}/fixtures/multi@${image.manifestDigest}`);
      assert.equal(sha256(child), image.manifestDigest);
    }
  });

  test("the same spec always gives the same digests", async () => {
    const spec: ImageSpec = {
      layers: [
        [
          { path: "z", size: 70_000 },
          { path: "a/b", content: "x" },
          { path: "a", type: "dir" },
        ],
      ],
      compression: "zstd",
    };
    const [a, b] = await Promise.all([
      mkdtemp(join(tmpdir(), "ferry-det-")),
      mkdtemp(join(tmpdir(), "ferry-det-")),
    ]);
    try {
      const [one, two] = await Promise.all([
        writeImageLayout(a, "t", spec),
        writeImageLayout(b, "t", { ...spec, layers: [[...(spec.layers[0] ?? [])].reverse()] }),
      ]);
      assert.equal(one.manifestDigest, two.manifestDigest);
    } finally {
      await Promise.all([a, b].map((d) => rm(d, { recursive: true, force: true })));
    }
  });

  test("blobGets() reads blob downloads from the access log", async () => {
    const image = await pushImage(registry.host, "fixtures/log", "v1", { layers: small("log") });
    const layer = image.layers[0];
    assert.ok(layer);
    await get(`${registry.url}/v2/fixtures/log/blobs/${layer.digest}`);
    await get(`${registry.url}/v2/fixtures/log/blobs/sha256:${"0".repeat(64)}`);
    const gets = await registry.blobGets();
    assert.deepEqual(
      gets.filter((g) => g.name === "fixtures/log"),
      [
        { name: "fixtures/log", digest: layer.digest, status: 200, bytes: layer.size },
        { name: "fixtures/log", digest: `sha256:${"0".repeat(64)}`, status: 404, bytes: 157 },
      ],
    );
  });

  test("a pull-through registry (proxyRemoteUrl) serves the upstream's images", async () => {
    const image = await pushImage(registry.host, "fixtures/upstream", "v1", {
      layers: small("upstream"),
    });
    const mirror = await startRegistry({ proxyRemoteUrl: registry.url });
    try {
      const raw = await inspectRaw(`${mirror.host}/fixtures/upstream:v1`);
      assert.equal(sha256(raw), image.manifestDigest);
      const layer = image.layers[0];
      assert.ok(layer);
      const blob = await get(`${mirror.url}/v2/fixtures/upstream/blobs/${layer.digest}`);
      assert.equal(sha256(blob.body), layer.digest);
      assert.ok((await registry.blobGets()).some((g) => g.digest === layer.digest));
    } finally {
      await mirror.stop();
    }
  });

  describe("proxy", () => {
    let blob: { digest: string; size: number };
    let blobPath: string;
    before(async () => {
      const image = await pushImage(registry.host, "fixtures/proxied", "v1", {
        layers: [[{ path: "payload", size: 40_000 }]],
      });
      blob = image.layers[0] ?? { digest: "", size: 0 };
      blobPath = `/v2/fixtures/proxied/blobs/${blob.digest}`;
    });

    test("forwards requests and records them, Range and Authorization included", async () => {
      const proxy = await startProxy({ target: registry.host });
      try {
        assert.equal((await get(`${proxy.url}/v2/`)).status, 200);
        const whole = await get(proxy.url + blobPath, { authorization: "Bearer t" });
        assert.equal(whole.status, 200);
        assert.equal(sha256(whole.body), blob.digest);
        const part = await get(proxy.url + blobPath, { range: "bytes=10-19" });
        assert.equal(part.status, 206);
        assert.equal(part.body.length, 10);
        assert.deepEqual(part.body, whole.body.subarray(10, 20));
        assert.ok(
          proxy.requests.every((q) => typeof q.finishedAt === "number"),
          "each record says when its answer finished",
        );
        assert.deepEqual(
          proxy.requests.map(({ finishedAt: _, ...q }) => q),
          [
            { method: "GET", path: "/v2/", range: undefined, status: 200, authorization: false },
            { method: "GET", path: blobPath, range: undefined, status: 200, authorization: true },
            {
              method: "GET",
              path: blobPath,
              range: "bytes=10-19",
              status: 206,
              authorization: false,
            },
          ],
        );
      } finally {
        await proxy.stop();
      }
    });

    test("corrupts one byte of blob bodies", async () => {
      const proxy = await startProxy({ target: registry.host, corruptBlobs: true });
      try {
        const answer = await get(proxy.url + blobPath);
        assert.equal(answer.status, 200);
        assert.equal(answer.body.length, blob.size);
        assert.notEqual(sha256(answer.body), blob.digest);
        const clean = await get(registry.url + blobPath);
        const differing = [...answer.body.keys()].filter((i) => answer.body[i] !== clean.body[i]);
        assert.deepEqual(differing, [Math.floor(blob.size / 2)]);
      } finally {
        await proxy.stop();
      }
    });

    test("fails the first requests, then forwards", async () => {
      const proxy = await startProxy({ target: registry.host, failFirst: 2 });
      try {
        const statuses = [];
        for (let i = 0; i < 3; i++) statuses.push((await get(`${proxy.url}/v2/`)).status);
        assert.deepEqual(statuses, [503, 503, 200]);
      } finally {
        await proxy.stop();
      }
    });

    test("throttles and stalls bodies", async () => {
      const slow = await startProxy({ target: registry.host, bytesPerSecond: 100_000 });
      try {
        const started = Date.now();
        const answer = await get(slow.url + blobPath);
        assert.equal(sha256(answer.body), blob.digest);
        assert.ok(Date.now() - started >= 300, `took ${Date.now() - started} ms`);
      } finally {
        await slow.stop();
      }
      const stalled = await startProxy({ target: registry.host, stallAfterBytes: 1000 });
      try {
        const received = await new Promise<{ bytes: number; ended: boolean }>((resolve, reject) => {
          const req = request(stalled.url + blobPath, { agent: false }, (res) => {
            let bytes = 0;
            let ended = false;
            res.on("data", (c: Buffer) => {
              bytes += c.length;
            });
            res.on("end", () => {
              ended = true;
            });
            setTimeout(() => {
              resolve({ bytes, ended });
              req.destroy();
            }, 300);
          });
          req.on("error", (err) => {
            if (!req.destroyed) reject(err);
          });
          req.end();
        });
        assert.deepEqual(received, { bytes: 1000, ended: false });
      } finally {
        await stalled.stop();
      }
    });
  });
});

test("a registry with htpasswd rejects anonymous clients and accepts the user", async () => {
  const registry = await startRegistry({ htpasswd: { user: "ferry", password: "s3cret" } });
  try {
    const anonymous = await get(`${registry.url}/v2/`);
    assert.equal(anonymous.status, 401);
    assert.match(String(anonymous.headers["www-authenticate"]), /^Basic realm=/);
    const basic = "Basic " + Buffer.from("ferry:s3cret").toString("base64");
    assert.equal((await get(`${registry.url}/v2/`, { authorization: basic })).status, 200);
    const wrong = "Basic " + Buffer.from("ferry:nope").toString("base64");
    assert.equal((await get(`${registry.url}/v2/`, { authorization: wrong })).status, 401);
    const image = await pushImage(
      registry.host,
      "private/app",
      "v1",
      { layers: small("private") },
      { creds: "ferry:s3cret" },
    );
    const raw = await inspectRaw(`${registry.host}/private/app:v1`, "ferry:s3cret");
    assert.equal(sha256(raw), image.manifestDigest);
    await assert.rejects(inspectRaw(`${registry.host}/private/app:v1`));
  } finally {
    await registry.stop();
  }
});

test("writeLayoutFromTree packs real files, dirs and symlinks under a byte cap", async () => {
  const root = await mkdtemp(join(tmpdir(), "ferry-tree-"));
  try {
    const src = join(root, "src");
    await mkdir(join(src, "sub"), { recursive: true });
    await writeFile(join(src, "sub", "a.txt"), "a".repeat(1000));
    await writeFile(join(src, "big.bin"), Buffer.alloc(300_000, 7));
    await writeFile(join(src, "small.txt"), "small");
    await symlink("sub/a.txt", join(src, "link"));
    await execFileAsync("mkfifo", [join(src, "fifo")]);
    const layout = join(root, "layout");
    const image = await writeLayoutFromTree(layout, "tree", [[join(src, "sub")], [src]], {
      maxBytesPerLayer: 200_000,
    });
    assert.equal(image.layers.length, 2);
    const blob = join(layout, "blobs", "sha256", (image.layers[1]?.digest ?? "").slice(7));
    const { stdout } = await execFileAsync("tar", ["-tzf", blob]);
    const rel = src.slice(1);
    const names = stdout.split("\n").filter((n) => n.startsWith(rel));
    // big.bin is over the cap and the fifo is not a file: both are skipped.
    assert.deepEqual(names, [
      `${rel}/`,
      `${rel}/link`,
      `${rel}/small.txt`,
      `${rel}/sub/`,
      `${rel}/sub/a.txt`,
    ]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
