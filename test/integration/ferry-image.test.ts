// ferry's own container image (scripts/build-image.ts), built once without a Docker daemon,
// then taken by the real consumers: `docker load` + `docker run` on a real dockerd, and
// `ferry load` into another store.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, buildImage } from "../../scripts/build-image.ts";
import { Store } from "../../src/store/index.ts";
import {
  type RunningContainerd,
  type RunningDockerd,
  startContainerd,
  startDockerd,
} from "../fixtures/runtimes.ts";
import { describeRun, entriesFor, ferry, removeDir, tempDir } from "./cli.ts";

const TAG = "ferry:test";
const REFERENCE = "docker.io/library/ferry:test";

describe("ferry's container image", () => {
  let work: string;
  let archive: string;
  let built: BuiltImage;
  let version: string;
  let containerd: RunningContainerd | undefined;
  let dockerd: RunningDockerd | undefined;

  before(async () => {
    work = await tempDir("image");
    archive = join(work, "ferry-image.tar");
    version = (
      JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
        version: string;
      }
    ).version;
    const daemons = (async () => {
      containerd = await startContainerd();
      dockerd = await startDockerd(containerd.socket);
    })();
    // gzip level 1: the test is about the image's content, not its size.
    built = await buildImage({
      tag: TAG,
      store: await Store.open(join(work, "store")),
      output: archive,
      gzipLevel: 1,
    });
    await daemons;
  });

  after(async () => {
    await dockerd?.stop();
    await containerd?.stop();
    await removeDir(work);
  });

  test("is recorded in the store with the node runtime, modules and sources as layers", async () => {
    assert.equal(built.reference, REFERENCE);
    assert.equal(built.layers.length, 3);
    const entries = await entriesFor(join(work, "store"), REFERENCE);
    assert.deepEqual(
      entries.map((e) => e.digest),
      [built.manifest.digest],
    );
    const inspected = await ferry(["inspect", REFERENCE, "--store", join(work, "store")]);
    assert.equal(inspected.code, 0, describeRun(inspected));
    assert.match(inspected.stdout, /"Entrypoint":\s*\[\s*"ferry"\s*\]/);
    assert.match(
      inspected.stdout,
      new RegExp(`"org.opencontainers.image.version":\\s*"${version}"`),
    );
  });

  test("docker load takes the archive and `docker run` starts ferry from it, read-only", async () => {
    assert.ok(dockerd);
    const loaded = await dockerd.docker(["load", "-i", archive]);
    assert.match(loaded.stdout, new RegExp(`Loaded image: ${TAG}`));
    const ran = await dockerd.docker([
      "run",
      "--rm",
      "--network",
      "none",
      // as the DaemonSet runs it: read-only root, /tmp writable
      "--read-only",
      "--tmpfs",
      "/tmp",
      TAG,
      "--version",
    ]);
    assert.equal(ran.stdout, `ferry ${version}\n`);
    assert.equal(ran.stderr, "");

    // The production modules resolve from /app and Node trusts the image's CA bundle.
    const script = [
      "const k8s = await import('@kubernetes/client-node');",
      "const tls = await import('node:tls');",
      "console.log(typeof k8s.KubeConfig, process.env.NODE_EXTRA_CA_CERTS, tls.rootCertificates.length > 0);",
    ].join(" ");
    const modules = await dockerd.docker([
      "run",
      "--rm",
      "--network",
      "none",
      "--entrypoint",
      "node",
      TAG,
      "--input-type=module",
      "-e",
      script,
    ]);
    assert.equal(modules.stdout, "function /etc/ssl/certs/ca-certificates.crt true\n");
    assert.equal(modules.stderr, "", "no warning about the CA bundle");
  });

  test("ferry load reads the archive into another store, same manifest", async () => {
    const other = join(work, "other-store");
    const loaded = await ferry(["load", "-i", archive, "--store", other, "-q"]);
    assert.equal(loaded.code, 0, describeRun(loaded));
    assert.equal(loaded.stdout.trim(), REFERENCE);
    const listed = await ferry(["images", "--store", other, "--json"]);
    assert.equal(listed.code, 0, describeRun(listed));
    assert.ok(listed.stdout.includes(built.manifest.digest), listed.stdout);
  });
});
