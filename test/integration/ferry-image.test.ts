// ferry's own container image (scripts/build-image.ts), built once without a Docker daemon,
// then taken by the real consumers: `docker load` + `docker run` on a real dockerd, and
// `ferry load` into another store.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { type BuiltImage, buildImage } from "../../scripts/build-image.ts";
import { Store } from "../../src/store/index.ts";
import { DEFAULT_STARTUP_TAINT_KEY, SERVICE_ACCOUNT_DIR } from "../../src/kube/index.ts";
import { pushImage } from "../fixtures/images.ts";
import { type KubeObject, startFakeApiServer } from "../fixtures/kube-apiserver.ts";
import { freePort, type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import {
  type RunningContainerd,
  type RunningDockerd,
  startContainerd,
  startDockerd,
} from "../fixtures/runtimes.ts";
import { describeRun, entriesFor, ferry, removeDir, tempDir, until } from "./cli.ts";

const run = promisify(execFile);
const TAG = "ferry:test";
const NODE = "test-node";
const NAMESPACE = "ferry-system";
const AGENT_USER = `system:serviceaccount:${NAMESPACE}:ferry`;
const REFERENCE = "docker.io/library/ferry:test";

describe("ferry's container image", () => {
  let work: string;
  let archive: string;
  let built: BuiltImage;
  let version: string;
  let containerd: RunningContainerd | undefined;
  let dockerd: RunningDockerd | undefined;
  let registry: RunningRegistry | undefined;

  before(async () => {
    work = await tempDir("image");
    archive = join(work, "ferry-image.tar");
    version = (
      JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
        version: string;
      }
    ).version;
    const daemons = (async () => {
      registry = await startRegistry();
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
    await stopDockerd(dockerd);
    await containerd?.stop();
    await registry?.stop();
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
      "--json",
    ]);
    // The image has no .git: the commit is the one recorded at build time (build-info.json).
    const repo = new URL("../..", import.meta.url).pathname;
    const head = (await run("git", ["-C", repo, "log", "-1", "--format=%H"])).stdout.trim();
    const reported = JSON.parse(ran.stdout) as Record<string, string>;
    assert.equal(reported.version, version);
    assert.equal(reported.commit, head);
    assert.match(reported.node ?? "", /^v24\./);
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

  test("ferry copy pushes it from the store to a registry, digest unchanged (skopeo reads it)", async () => {
    assert.ok(registry);
    const target = `${registry.host}/platform/ferry:test`;
    const pushed = await ferry(["copy", `store:${TAG}`, target, "--store", join(work, "store")]);
    assert.equal(pushed.code, 0, describeRun(pushed));
    const { stdout } = await run("skopeo", [
      "inspect",
      "--tls-verify=false",
      "--format",
      "{{.Digest}}",
      `docker://${target}`,
    ]);
    assert.equal(stdout.trim(), built.manifest.digest);
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

  test("runs as the DaemonSet runs it: in-cluster ServiceAccount, no capabilities, read-only root; removes the node's startup taint once the ConfigMap's image is in containerd", async (t) => {
    assert.ok(dockerd && containerd && registry);
    const { stdout } = await run("kubectl", [
      "kustomize",
      join(import.meta.dirname, "../../deploy/kubernetes"),
    ]);
    const objects = parseAllDocuments(stdout).map((d) => d.toJS() as Rendered);
    const ds = objects.find((o) => o.kind === "DaemonSet")?.spec?.template.spec;
    const agentMap = objects.find((o) => o.kind === "ConfigMap" && o.data?.["agent.yaml"]);
    const imagesMap = objects.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name === "ferry-images",
    );
    assert.ok(ds && agentMap?.data && imagesMap);
    const [container] = ds.containers;
    assert.ok(container);

    // The cluster: this node, registered with the startup taint, and the ferry-images
    // ConfigMap as rendered, listing a test image.
    const api = await startFakeApiServer();
    t.after(() => api.stop());
    const image = `${registry.host}/deploy/app:v1`;
    await pushImage(registry.host, "deploy/app", "v1", {
      layers: [[{ path: "app/hello.txt", content: "warmed by the DaemonSet's image\n" }]],
    });
    api.create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: NODE },
      spec: {
        taints: [{ key: DEFAULT_STARTUP_TAINT_KEY, value: "pending", effect: "NoSchedule" }],
      },
    });
    api.create({ ...imagesMap, data: { "images.yaml": `images:\n  - ${image}\n` } } as KubeObject);
    const serviceAccount = await api.serviceAccountFor(AGENT_USER, NAMESPACE);

    // The pod's volumes, with test directories standing in for the host paths and ConfigMap.
    const config = join(work, "etc-ferry");
    await mkdir(config);
    for (const [key, text] of Object.entries(agentMap.data))
      await writeFile(join(config, key), text);
    const store = join(work, "host-store");
    await mkdir(store);
    const hostDirs: Record<string, string> = {
      config,
      "cri-socket": join(containerd.socket, ".."),
      store,
      "image-fs": join(containerd.socket, ".."),
    };
    const mounts = container.volumeMounts.flatMap((m) => {
      if (m.name === "tmp") return ["--tmpfs", m.mountPath];
      const host = hostDirs[m.name];
      assert.ok(host, `a test directory for volume ${m.name}`);
      return ["-v", `${host}:${m.mountPath}${m.readOnly ? ":ro" : ""}`];
    });
    const sc = container.securityContext;
    assert.deepEqual(sc.capabilities.drop, ["ALL"]);
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    const downward: Record<string, string> = {
      "spec.nodeName": NODE,
      "metadata.namespace": NAMESPACE,
    };
    const env = container.env.flatMap((e) => {
      const value = downward[e.valueFrom.fieldRef.fieldPath];
      assert.ok(value, e.name);
      return ["-e", `${e.name}=${value}`];
    });
    const port = await freePort();
    const name = `ferry-agent-${port}`;
    // The host network (dockerd here has no bridge), so the agent listens on loopback only.
    await dockerd.docker([
      "run",
      "-d",
      "--name",
      name,
      "--network",
      "host",
      "--read-only",
      "--cap-drop",
      "ALL",
      "--security-opt",
      "no-new-privileges",
      "--user",
      String(sc.runAsUser),
      ...mounts,
      "-v",
      `${serviceAccount.dir}:${SERVICE_ACCOUNT_DIR}:ro`,
      "-e",
      `KUBERNETES_SERVICE_HOST=${serviceAccount.host}`,
      "-e",
      `KUBERNETES_SERVICE_PORT=${serviceAccount.port}`,
      ...env,
      TAG,
      ...container.args,
      "--listen",
      `127.0.0.1:${port}`,
    ]);
    const logs = async () => {
      const l = await dockerd?.docker(["logs", name]).catch(() => undefined);
      return `${l?.stdout ?? ""}${l?.stderr ?? ""}`;
    };
    try {
      // The taint goes (and /readyz turns 200) once the image is in containerd, through the
      // mounted socket.
      const tainted = () =>
        (
          (api.get("v1", "Node", NODE)?.spec as { taints?: { key: string }[] } | undefined)
            ?.taints ?? []
        ).some((x) => x.key === DEFAULT_STARTUP_TAINT_KEY);
      let ready: Response | undefined;
      const state = async () =>
        `readyz ${ready?.status}, node ${JSON.stringify(api.get("v1", "Node", NODE)?.spec)}\n${await logs()}`;
      // A bound for a loaded machine, not a performance figure.
      await until(
        "the startup taint gone and /readyz 200",
        async () => {
          ready = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
          return ready?.status === 200 && !tainted();
        },
        120_000,
      ).catch(async (err: Error) => assert.fail(`${err.message}\n${await state()}`));
      assert.equal(ready?.status, 200, await state());
      assert.equal(tainted(), false, await state());
      const images = (await containerd.ctr(["-n", "k8s.io", "images", "ls"])).stdout;
      const line = images.split("\n").find((l) => l.startsWith(`${image} `));
      assert.ok(line, images);
      assert.match(line, /io\.cri-containerd\.pinned=pinned/);
      const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as {
        node?: string;
      };
      assert.equal(status.node, NODE);
      // It talked to the API as the mounted ServiceAccount, nobody else.
      assert.ok(api.calls.length > 0);
      assert.deepEqual([...new Set(api.calls.map((c) => c.user))], [AGENT_USER]);
    } finally {
      await dockerd.docker(["rm", "-f", name]).catch(() => undefined);
    }
  });
});

/**
 * Stops the daemon and removes its directory, including the host network namespace dockerd
 * bind-mounts there once a container used `--network host` (which the fixture's stop leaves).
 */
async function stopDockerd(dockerd: RunningDockerd | undefined): Promise<void> {
  if (dockerd === undefined) return;
  await dockerd.stop();
  const dir = dirname(new URL(dockerd.host).pathname);
  const netns = join(dir, "exec", "netns", "default");
  if ((await readFile("/proc/self/mounts", "utf8")).includes(` ${netns} `)) {
    await run("umount", [netns]);
  }
  await rm(dir, { recursive: true, force: true });
}

/** The parts of the rendered objects this test reads. */
interface Rendered {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: {
    template: {
      spec: {
        containers: {
          args: string[];
          env: { name: string; valueFrom: { fieldRef: { fieldPath: string } } }[];
          volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
          securityContext: {
            runAsUser: number;
            readOnlyRootFilesystem: boolean;
            allowPrivilegeEscalation: boolean;
            capabilities: { drop: string[] };
          };
        }[];
      };
    };
  };
}
