// runtime/ targets against a real dockerd (Engine API on its unix socket) and a real containerd
// (CRI image service over gRPC), pulling from real Distribution registries, one with htpasswd.
import assert from "node:assert/strict";
import { busyboxLayer } from "../fixtures/busybox.ts";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isFerryError } from "../../src/observe/index.ts";
import { parseReference, type Reference } from "../../src/reference/index.ts";
import {
  CriTarget,
  createTarget,
  DockerTarget,
  PINNED_LABEL,
  PINNED_VALUE,
  type Target,
} from "../../src/runtime/index.ts";
import { type FileSpec, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  type RunningContainerd,
  type RunningDockerd,
  startContainerd,
  startDockerd,
} from "../fixtures/runtimes.ts";
import { removeDir, tempDir } from "./cli.ts";

const USER = "ferry";
const PASSWORD = "s3cret-pass";
const CREDENTIAL = { username: USER, password: PASSWORD };

/** Resolves to the error a promise rejects with; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

async function assertFerryError(promise: Promise<unknown>, code: string, text?: RegExp) {
  const err = await rejection(promise);
  assert.ok(isFerryError(err), `a FerryError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (text !== undefined) assert.match(err.message, text);
  assert.ok(err.hint, "it has a hint");
  return err;
}

describe("runtime targets with real dockerd and containerd", () => {
  let open: RunningRegistry;
  let locked: RunningRegistry;
  let containerd: RunningContainerd;
  let dockerd: RunningDockerd;
  let work: string;
  let docker: DockerTarget;
  let cri: CriTarget;
  /** of every image pushed: they are built alike */
  let manifestDigest: string;
  const ref = (registry: RunningRegistry, name: string): Reference =>
    parseReference(`${registry.host}/${name}:v1`);

  before(async () => {
    work = await tempDir("runtime");
    const layers: FileSpec[][] = [await busyboxLayer(["sh", "echo"])];
    const startRuntimes = async () => {
      containerd = await startContainerd();
      dockerd = await startDockerd(containerd.socket);
    };
    [open, locked] = await Promise.all([
      startRegistry(),
      startRegistry({ htpasswd: { user: USER, password: PASSWORD } }),
      startRuntimes(),
    ]);
    const creds = `${USER}:${PASSWORD}`;
    [manifestDigest] = await Promise.all([
      pushImage(open.host, "shared/busybox", "v1", { layers }).then((i) => i.manifestDigest),
      ...["docker/busybox", "cri/busybox", "cri/pinned"].map((name) =>
        pushImage(open.host, name, "v1", { layers }),
      ),
      pushImage(open.host, "docker/arm64", "v1", {
        layers,
        platform: { os: "linux", architecture: "arm64" },
      }),
      ...["docker/private", "cri/private"].map((name) =>
        pushImage(locked.host, name, "v1", { layers }, { creds }),
      ),
    ]);
    docker = new DockerTarget({ host: dockerd.host });
    cri = new CriTarget({ endpoint: `unix://${containerd.socket}` });
  });

  after(async () => {
    await docker?.close();
    await cri?.close();
    await dockerd?.stop();
    await containerd?.stop();
    await Promise.all([open?.stop(), locked?.stop()]);
    await removeDir(work);
  });

  describe("docker (Engine API)", () => {
    test("ping; an absent image is not present", async () => {
      await docker.ping();
      assert.equal(docker.kind, "docker");
      assert.equal(docker.name, `docker (${dockerd.host})`);
      assert.deepEqual(await docker.status(ref(open, "docker/absent")), { present: false });
    });

    test("pulls from a plain-HTTP loopback registry; the image runs", async () => {
      const image = ref(open, "docker/busybox");
      const pulled = await docker.pull(image);
      assert.equal(pulled.present, true);
      assert.match(pulled.id ?? "", /^sha256:[0-9a-f]{64}$/);
      assert.ok(
        pulled.repoDigests?.some((d) => d.startsWith(`${open.host}/docker/busybox@sha256:`)),
      );
      assert.deepEqual(await docker.status(image), pulled);
      const byDigest = parseReference(`${open.host}/docker/busybox@${manifestDigest}`);
      assert.deepEqual(await docker.status(byDigest), pulled);
      const other = parseReference(`${open.host}/shared/busybox@${manifestDigest}`);
      assert.equal((await docker.pull(other)).id, pulled.id, "pulled by digest: the same image");
      const name = `${open.host}/docker/busybox:v1`;
      const ran = await dockerd.docker(["run", "--rm", "--network", "none", name, "echo", "ok"]);
      assert.equal(ran.stdout, "ok\n");
    });

    test("an image held for another platform is not present for the listed one", async () => {
      const image = ref(open, "docker/arm64");
      const pulled = await docker.pull(image, { platform: "linux/arm64" });
      assert.equal(pulled.present, true);
      assert.deepEqual(await docker.status(image, undefined, "linux/arm64/v8"), pulled);
      assert.deepEqual(
        await docker.status(image),
        pulled,
        "no platform listed: as Docker holds it",
      );
      assert.deepEqual(await docker.status(image, undefined, "linux/amd64"), { present: false });
    });

    test("pulls with a credential from an htpasswd registry; without one fails clearly", async () => {
      const image = ref(locked, "docker/private");
      const err = await assertFerryError(docker.pull(image), "FERRY_RUNTIME_PULL_FAILED");
      assert.match(
        err.message,
        new RegExp(`docker could not pull ${locked.host}/docker/private:v1`),
      );
      assert.match(err.hint ?? "", /credentials/);
      const pulled = await docker.pull(image, { credential: CREDENTIAL });
      assert.equal(pulled.present, true);
      const wrong = docker.pull(ref(locked, "docker/private"), {
        credential: { username: USER, password: "wrong" },
      });
      const rejected = await assertFerryError(wrong, "FERRY_RUNTIME_PULL_FAILED");
      assert.doesNotMatch(rejected.message, /wrong/, "the password is never in the message");
    });

    test("a socket nobody listens on is FERRY_RUNTIME_UNAVAILABLE, naming the socket", async () => {
      const socket = join(work, "nobody.sock");
      const absent = createTarget("docker", { endpoint: `unix://${socket}` });
      const err = await assertFerryError(absent.ping(), "FERRY_RUNTIME_UNAVAILABLE");
      assert.match(err.message, new RegExp(socket.replaceAll(".", "\\.")));
      assert.match(err.hint ?? "", /DOCKER_HOST/);
      await absent.close();
      const fromEnv = new DockerTarget({ env: { DOCKER_HOST: `unix://${socket}` } });
      assert.equal(fromEnv.name, `docker (unix://${socket})`);
      await assertFerryError(fromEnv.status(ref(open, "x/y")), "FERRY_RUNTIME_UNAVAILABLE");
    });
  });

  describe("containerd (CRI over gRPC)", () => {
    test("ping asks the runtime's version", async () => {
      await cri.ping();
      const version = await cri.version();
      assert.equal(version.runtimeName, "containerd");
      assert.equal(version.runtimeApiVersion, "v1");
      assert.deepEqual(await cri.status(ref(open, "cri/absent")), { present: false });
    });

    test("pulls into k8s.io from a plain-HTTP loopback registry; status and ctr see it", async () => {
      const image = ref(open, "cri/busybox");
      const pulled = await cri.pull(image);
      assert.equal(pulled.present, true);
      assert.match(pulled.id ?? "", /^sha256:[0-9a-f]{64}$/);
      const digest = pulled.repoDigests?.find((d) => d.startsWith(`${open.host}/cri/busybox@`));
      assert.ok(digest, `a repo digest in ${String(pulled.repoDigests)}`);
      assert.deepEqual(await cri.status(image), pulled);
      assert.equal(digest, `${open.host}/cri/busybox@${manifestDigest}`);
      const byDigest = parseReference(`${open.host}/shared/busybox@${manifestDigest}`);
      assert.deepEqual(await cri.status(byDigest), { present: false });
      const pinned = await cri.pull(byDigest);
      assert.equal(pinned.id, pulled.id, "one image, known by a second name");
      const { stdout } = await containerd.ctr(["-n", "k8s.io", "images", "ls", "-q"]);
      assert.ok(stdout.split("\n").includes(`${open.host}/cri/busybox:v1`), stdout);
      assert.ok(stdout.split("\n").includes(digest), stdout);
      // The CRI holds the runtime's own platform only: never present for another.
      assert.deepEqual(await cri.status(image, undefined, "linux/s390x"), { present: false });
      assert.equal((await cri.status(image, undefined, "linux/amd64")).id, pulled.id);
    });

    test("pulls with a credential from an htpasswd registry; without one fails clearly", async () => {
      const image = ref(locked, "cri/private");
      const err = await assertFerryError(cri.pull(image), "FERRY_RUNTIME_PULL_FAILED");
      assert.match(err.message, /401 Unauthorized/);
      assert.match(err.hint ?? "", /credentials/);
      const pulled = await cri.pull(image, { credential: CREDENTIAL });
      assert.equal(pulled.present, true);
    });

    test("pin labels every name of the image in k8s.io; containerd 1.6 does not honour it", async () => {
      const image = ref(open, "cri/pinned");
      await assertFerryError(cri.pin(image), "FERRY_IMAGE_NOT_FOUND");
      const pulled = await cri.pull(image);
      const honoured = await cri.pin(image);
      const { runtimeVersion } = await cri.version();
      // containerd 1.7+ reports the label as CRI `pinned`; 1.6 (Debian 12's) only stores it.
      assert.equal(honoured, !/^v?1\.[0-6]\./.test(runtimeVersion), runtimeVersion);
      const { stdout } = await containerd.ctr(["-n", "k8s.io", "images", "ls"]);
      const names = [`${open.host}/cri/pinned:v1`, ...(pulled.repoDigests ?? []), pulled.id ?? ""];
      for (const name of names) {
        const line = stdout.split("\n").find((l) => l.startsWith(`${name} `));
        assert.ok(
          line?.includes(`${PINNED_LABEL}=${PINNED_VALUE}`),
          `${name} pinned in:\n${stdout}`,
        );
      }
      // unpin takes the label off every name again
      assert.equal(await cri.unpin(image), true);
      const after = (await containerd.ctr(["-n", "k8s.io", "images", "ls"])).stdout;
      for (const name of names) {
        const line = after.split("\n").find((l) => l.startsWith(`${name} `));
        assert.ok(
          line !== undefined && !line.includes(PINNED_LABEL),
          `${name} unpinned in:\n${after}`,
        );
      }
    });

    test("an absent endpoint is FERRY_RUNTIME_UNAVAILABLE, naming the socket", async () => {
      const socket = join(work, "no-containerd.sock");
      const absent: Target = createTarget("containerd", { endpoint: `unix://${socket}` });
      const started = Date.now();
      const err = await assertFerryError(absent.ping(), "FERRY_RUNTIME_UNAVAILABLE");
      assert.match(err.message, new RegExp(socket.replaceAll(".", "\\.")));
      assert.match(err.hint ?? "", /CONTAINER_RUNTIME_ENDPOINT/);
      await assertFerryError(absent.pull(ref(open, "cri/busybox")), "FERRY_RUNTIME_UNAVAILABLE");
      assert.ok(Date.now() - started < 5000, "fails fast");
      await absent.close();
      assert.throws(() => createTarget("store"), /not a runtime/);
    });
  });
});
