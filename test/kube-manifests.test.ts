/**
 * deploy/kubernetes as a cluster would receive it: each kustomization rendered offline by
 * Debian's `kubectl kustomize`, every object validated against the Kubernetes schemas
 * (kubernetes-models), the example PrePull against the CRD's own openAPIV3Schema, and the
 * properties issue #10 asks of the agent's DaemonSet.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix, relative, resolve } from "node:path";
import { before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { isMap, isSeq, parse, parseAllDocuments } from "yaml";
import { parseAgentSettings, parseImageList } from "../src/agent/index.ts";
import { agentUsage } from "../src/cli/commands/agent.ts";
import { mirrorUsage } from "../src/cli/commands/mirror.ts";
import {
  DEFAULT_IMAGE_FS_PATH,
  DEFAULT_IMAGE_GC_HIGH_PERCENT,
  DEFAULT_STARTUP_TAINT_KEY,
  IMAGE_LIST_KEY,
  IMAGE_LIST_LABEL,
  NODE_IMAGES_KIND,
  NODE_IMAGES_PLURAL,
  nodeImagesSpec,
  nodeStatus,
  PEER_PORT_NAME,
  PEERS_SERVICE,
} from "../src/kube/index.ts";

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, "..");
const KUBE = join(REPO, "deploy/kubernetes");
const KUSTOMIZATIONS = {
  default: KUBE,
  containerd: join(KUBE, "overlays/containerd"),
  "docker-cri-dockerd": join(KUBE, "overlays/docker-cri-dockerd"),
} as const;
type Variant = keyof typeof KUSTOMIZATIONS;

const NAMESPACE = "ferry-system";

// Loose shapes for reading rendered YAML; kubernetes-models does the real validation.
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  args: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  securityContext?: Record<string, unknown>;
  ports: { name: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string };
  secret?: { secretName: string; optional?: boolean };
}
interface PodSpec {
  serviceAccountName: string;
  hostNetwork?: boolean;
  priorityClassName?: string;
  tolerations?: Toleration[];
  containers: Container[];
  volumes: Volume[];
}
interface Rendered {
  objects: K8sObject[];
  find(kind: string, name: string): K8sObject;
}

async function render(dir: string): Promise<Rendered> {
  const { stdout } = await run("kubectl", ["kustomize", dir], { maxBuffer: 16 << 20 });
  const objects = parseAllDocuments(stdout).map((d) => d.toJS() as K8sObject);
  return {
    objects,
    find(kind, name) {
      const found = objects.find(
        (o) =>
          o.kind === kind && (o.metadata.name === name || o.metadata.name.startsWith(`${name}-`)),
      );
      assert.ok(found, `${kind} ${name} is rendered`);
      return found;
    },
  };
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/** The kubernetes-models class for an object's apiVersion and kind (kubernetes-models/apps/v1 → DaemonSet). */
async function modelOf(apiVersion: string, kind: string): Promise<ModelClass> {
  const module = (await import(`kubernetes-models/${apiVersion}`)) as Record<string, unknown>;
  const model = module[kind];
  assert.equal(
    typeof model,
    "function",
    `kubernetes-models has a schema for ${apiVersion} ${kind}`,
  );
  return model as ModelClass;
}

/** Kubernetes' toleration matching (k8s.io/api/core/v1 Toleration.ToleratesTaint). */
function tolerates(t: Toleration, taint: { key: string; value?: string; effect: string }): boolean {
  if (t.effect !== undefined && t.effect !== "" && t.effect !== taint.effect) return false;
  if (t.key !== undefined && t.key !== "" && t.key !== taint.key) return false;
  if ((t.key === undefined || t.key === "") && t.operator !== "Exists") return false;
  if (t.operator === "Exists") return true;
  return (t.value ?? "") === (taint.value ?? "");
}

function podSpecOf(daemonSet: K8sObject): PodSpec {
  return (daemonSet.spec as { template: { spec: PodSpec } }).template.spec;
}

function agentConfigOf(r: Rendered): { text: string; configMap: K8sObject } {
  const configMap = r.find("ConfigMap", "ferry-agent");
  const text = (configMap.data as Record<string, string>)["agent.yaml"];
  assert.ok(text, "the ferry-agent ConfigMap holds agent.yaml");
  return { text, configMap };
}

/** The mount whose path holds `path` (the deepest one), and its volume. */
function mountHolding(pod: PodSpec, path: string, container = pod.containers[0] as Container) {
  const mount = container.volumeMounts
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, "")}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  assert.ok(mount, `a volume is mounted where ${path} is`);
  const volume = pod.volumes.find((v) => v.name === mount.name);
  assert.ok(volume, `volume ${mount.name} exists`);
  return { mount, volume };
}

function mirrorContainer(r: Rendered): Container {
  const c = podSpecOf(r.find("DaemonSet", "ferry-agent")).containers.find(
    (x) => x.name === "ferry-mirror",
  );
  assert.ok(c, "the DaemonSet runs a ferry-mirror container");
  return c;
}

function socketPath(endpoint: string): string {
  const url = new URL(endpoint);
  assert.equal(url.protocol, "unix:");
  return url.pathname;
}

describe("deploy/kubernetes", () => {
  const rendered = new Map<Variant, Rendered>();
  before(async () => {
    for (const [variant, dir] of Object.entries(KUSTOMIZATIONS) as [Variant, string][]) {
      rendered.set(variant, await render(dir));
    }
  });
  const each = (fn: (r: Rendered, variant: Variant) => void | Promise<void>) => async () => {
    for (const variant of Object.keys(KUSTOMIZATIONS) as Variant[]) {
      await fn(rendered.get(variant) as Rendered, variant);
    }
  };

  it(
    "every rendered object validates against the Kubernetes schemas",
    each(async (r, variant) => {
      const kinds = r.objects.map((o) => o.kind).sort();
      assert.deepEqual(
        kinds,
        [
          "ClusterRole",
          "ClusterRoleBinding",
          "ConfigMap",
          "ConfigMap",
          "CustomResourceDefinition",
          "CustomResourceDefinition",
          "DaemonSet",
          "Namespace",
          "ResourceQuota",
          "Role",
          "RoleBinding",
          "Service",
          "ServiceAccount",
        ],
        variant,
      );
      for (const object of r.objects) {
        const Model = await modelOf(object.apiVersion, object.kind);
        assert.doesNotThrow(
          () => new Model(object).validate(),
          `${variant}: ${object.kind} ${object.metadata.name}`,
        );
      }
    }),
  );

  it("the schemas catch a broken object (the validation is not a no-op)", async () => {
    const r = rendered.get("default") as Rendered;
    const ds = structuredClone(r.find("DaemonSet", "ferry-agent"));
    (podSpecOf(ds).containers[0] as Container).ports[0] = {
      name: "http",
      containerPort: "five thousand" as unknown as number,
    };
    const Model = await modelOf(ds.apiVersion, ds.kind);
    assert.throws(() => new Model(ds).validate());
  });

  it(
    "namespaced objects are in ferry-system, with the shared names",
    each((r) => {
      const cluster = new Set([
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
      ]);
      for (const o of r.objects) {
        if (cluster.has(o.kind)) assert.equal(o.metadata.namespace, undefined, o.kind);
        else assert.equal(o.metadata.namespace, NAMESPACE, `${o.kind} ${o.metadata.name}`);
      }
      r.find("Namespace", NAMESPACE);
      r.find("ServiceAccount", "ferry");
      assert.equal(podSpecOf(r.find("DaemonSet", "ferry-agent")).serviceAccountName, "ferry");
      for (const kind of ["ClusterRoleBinding", "RoleBinding"]) {
        const binding = r.find(kind, "ferry-agent") as K8sObject & {
          subjects: { kind: string; name: string; namespace: string }[];
          roleRef: { kind: string; name: string };
        };
        assert.deepEqual(binding.subjects, [
          { kind: "ServiceAccount", name: "ferry", namespace: NAMESPACE },
        ]);
        r.find(binding.roleRef.kind, binding.roleRef.name);
      }
    }),
  );

  it(
    "the DaemonSet tolerates every taint, the startup taint and NoExecute ones included",
    each((r, variant) => {
      const tolerations = podSpecOf(r.find("DaemonSet", "ferry-agent")).tolerations ?? [];
      const taints = [
        { key: DEFAULT_STARTUP_TAINT_KEY, value: "pending", effect: "NoSchedule" },
        { key: "node.kubernetes.io/not-ready", effect: "NoExecute" },
        { key: "node.kubernetes.io/unreachable", effect: "NoExecute" },
        { key: "node.kubernetes.io/disk-pressure", effect: "NoSchedule" },
        { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" },
        { key: "dedicated", value: "gpu", effect: "NoExecute" },
        { key: "spot", value: "true", effect: "PreferNoSchedule" },
      ];
      for (const taint of taints) {
        assert.ok(
          tolerations.some((t) => tolerates(t, taint)),
          `${variant}: tolerates ${taint.key}:${taint.effect}`,
        );
      }
      // The matcher itself refuses what it should.
      assert.equal(tolerates({ key: "other", operator: "Exists" }, taints[0]!), false);
      assert.equal(tolerates({ operator: "Exists", effect: "NoSchedule" }, taints[1]!), false);
    }),
  );

  it(
    "probes, priority, resources and the downward API",
    each((r, variant) => {
      const pod = podSpecOf(r.find("DaemonSet", "ferry-agent"));
      assert.equal(pod.priorityClassName, "system-node-critical");
      // …allowed in the namespace where a ResourceQuota must admit critical priority classes.
      const quota = r.find("ResourceQuota", "ferry-critical-pods").spec as {
        scopeSelector: {
          matchExpressions: { scopeName: string; operator: string; values: string[] }[];
        };
      };
      assert.deepEqual(quota.scopeSelector.matchExpressions, [
        { scopeName: "PriorityClass", operator: "In", values: [pod.priorityClassName] },
      ]);
      assert.deepEqual(
        pod.containers.map((x) => x.name),
        ["agent", "ferry-mirror"],
      );
      const c = pod.containers[0] as Container;
      const port = (p: string | number | undefined) =>
        typeof p === "number" ? p : c.ports.find((x) => x.name === p)?.containerPort;
      assert.equal(c.livenessProbe?.httpGet?.path, "/healthz", variant);
      assert.equal(port(c.livenessProbe?.httpGet?.port), 5000);
      assert.equal(c.readinessProbe?.httpGet?.path, "/readyz");
      assert.equal(port(c.readinessProbe?.httpGet?.port), 5000);
      for (const kind of ["requests", "limits"] as const) {
        for (const resource of ["cpu", "memory"]) {
          assert.ok(c.resources?.[kind]?.[resource], `${variant}: ${kind}.${resource} is set`);
        }
      }
      const env = Object.fromEntries(
        (c.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
      );
      assert.equal(env.NODE_NAME, "spec.nodeName");
      assert.equal(env.POD_NAMESPACE, "metadata.namespace");
    }),
  );

  it(
    "agent.yaml is valid for the agent, and its runtime socket and store are mounted from the host",
    each((r, variant) => {
      const pod = podSpecOf(r.find("DaemonSet", "ferry-agent"));
      const c = pod.containers[0] as Container;
      const at = c.args.indexOf("--agent-config");
      assert.ok(at >= 0, "args name the agent config");
      const configPath = c.args[at + 1] as string;
      const { text } = agentConfigOf(r);
      const settings = parseAgentSettings(configPath, text);

      // The agent listens where kubelet probes it.
      assert.match(settings.listen ?? "", /^(0\.0\.0\.0|\[::\]):5000$/);
      // agent.yaml is mounted from its ConfigMap; the image lists come through the API
      // (--kubernetes), not from a file.
      const config = mountHolding(pod, configPath);
      assert.equal(config.volume.configMap?.name, agentConfigOf(r).configMap.metadata.name);
      assert.equal(settings.listFile, undefined);
      assert.ok(c.args.includes("--kubernetes"));

      const expected = variant === "docker-cri-dockerd" ? "docker" : "containerd";
      assert.deepEqual(settings.targets, [expected], variant);
      const endpoint = expected === "docker" ? settings.dockerHost : settings.criEndpoint;
      assert.ok(endpoint, `${variant}: the runtime's socket is configured`);
      const socket = mountHolding(pod, socketPath(endpoint));
      assert.ok(socket.volume.hostPath, `${variant}: the runtime socket comes from the host`);
      assert.notEqual(socket.mount.readOnly, true, "the CRI socket is mounted read-write");
      const hostSocket = posix.join(
        socket.volume.hostPath.path,
        posix.relative(socket.mount.mountPath, socketPath(endpoint)),
      );
      assert.equal(
        hostSocket,
        expected === "docker" ? "/var/run/docker.sock" : "/run/containerd/containerd.sock",
      );

      assert.ok(settings.store, "agent.yaml names the store");
      const store = mountHolding(pod, settings.store);
      assert.equal(store.volume.hostPath?.path, settings.store, "the store is on a hostPath");
      assert.notEqual(store.mount.readOnly, true);

      // The image filesystem the headroom check statfs()es is the host's, where the runtime
      // keeps its images; the agent's default is containerd's root.
      const fsAt = c.args.indexOf("--image-fs");
      const imageFs = fsAt >= 0 ? (c.args[fsAt + 1] as string) : DEFAULT_IMAGE_FS_PATH;
      const fs = mountHolding(pod, imageFs);
      assert.equal(
        fs.volume.hostPath?.path,
        expected === "docker" ? "/var/lib/docker" : "/var/lib/containerd",
        variant,
      );
      assert.equal(fs.mount.mountPath, imageFs);
      const gcAt = c.args.indexOf("--image-gc-high");
      assert.equal(c.args[gcAt + 1], String(DEFAULT_IMAGE_GC_HIGH_PERCENT), "kubelet's default");
    }),
  );

  it(
    "every flag the DaemonSet passes is one `ferry agent` has",
    each((r) => {
      const c = podSpecOf(r.find("DaemonSet", "ferry-agent")).containers[0] as Container;
      assert.equal(c.args[0], "agent");
      for (const flag of c.args.filter((a) => a.startsWith("--"))) {
        assert.match(agentUsage, new RegExp(`\\s${flag}\\b`), `ferry agent knows ${flag}`);
      }
    }),
  );

  it(
    "every flag the ferry-mirror container passes is one `ferry mirror` has",
    each((r) => {
      const c = mirrorContainer(r);
      assert.equal(c.args[0], "mirror");
      const flags = c.args.filter((a) => a.startsWith("--"));
      assert.ok(flags.length > 0);
      for (const flag of flags) {
        assert.match(mirrorUsage, new RegExp(`\\s${flag}\\b`), `ferry mirror knows ${flag}`);
      }
    }),
  );

  it(
    "the ferry-mirror container: loopback mirror on the host network, peers from the Service, the agent's store, the key from a Secret",
    each((r, variant) => {
      const pod = podSpecOf(r.find("DaemonSet", "ferry-agent"));
      const c = mirrorContainer(r);
      const arg = (flag: string) => {
        const at = c.args.indexOf(flag);
        assert.ok(at >= 0, `${variant}: ferry-mirror passes ${flag}`);
        return c.args[at + 1] as string;
      };
      // containerd (a host process) reaches 127.0.0.1:5002 only in the host's network.
      assert.equal(pod.hostNetwork, true, variant);
      assert.equal(arg("--listen"), "127.0.0.1:5002");
      assert.equal(arg("--peers"), "kubernetes");
      // The peer address is the pod's (= the node's) IP, from the downward API, on the port
      // the Service's EndpointSlices name.
      assert.equal(arg("--peer-listen"), "$(POD_IP):5001");
      const env = Object.fromEntries(
        (c.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
      );
      assert.equal(env.POD_IP, "status.podIP");
      assert.equal(env.POD_NAMESPACE, "metadata.namespace");
      assert.equal(c.ports.find((p) => p.name === PEER_PORT_NAME)?.containerPort, 5001);
      assert.equal(c.livenessProbe?.httpGet?.port, PEER_PORT_NAME);
      // The same store as the agent: one hostPath.
      const agentStore = mountHolding(pod, "/var/lib/ferry/store");
      const store = mountHolding(pod, arg("--store"), c);
      assert.equal(store.volume.hostPath?.path, agentStore.volume.hostPath?.path);
      assert.equal(store.volume.hostPath?.path, arg("--store"));
      assert.notEqual(store.mount.readOnly, true);
      // The fleet key from the Secret the docs tell how to create; the pod waits for it.
      const key = mountHolding(pod, arg("--peer-key-file"), c);
      assert.deepEqual(key.volume.secret, {
        secretName: "ferry-peer-key",
        optional: false,
        defaultMode: 0o400,
      });
      assert.equal(key.mount.readOnly, true);
      assert.equal(c.securityContext?.["readOnlyRootFilesystem"], true);
      for (const kind of ["requests", "limits"] as const) {
        for (const resource of ["cpu", "memory"]) {
          assert.ok(c.resources?.[kind]?.[resource], `${variant}: ${kind}.${resource} is set`);
        }
      }
    }),
  );

  it(
    "the image list ConfigMap and the headless peer Service",
    each((r) => {
      const list = r.find("ConfigMap", "ferry-images");
      assert.equal(list.metadata.name, "ferry-images");
      // The label and key the agent's code looks for, and a list its parser takes.
      assert.equal(list.metadata.labels?.[IMAGE_LIST_LABEL], "true");
      const text = (list.data as Record<string, string>)[IMAGE_LIST_KEY] ?? "";
      assert.ok(parseImageList(IMAGE_LIST_KEY, text).images.length > 0);
      // …read through the API in the agent's namespace.
      const role = r.find("Role", "ferry-agent") as K8sObject & {
        rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
      };
      assert.equal(role.metadata.namespace, list.metadata.namespace);
      const verbs = role.rules
        .filter((x) => x.apiGroups.includes("") && x.resources.includes("configmaps"))
        .flatMap((x) => x.verbs);
      for (const verb of ["list", "watch"]) assert.ok(verbs.includes(verb), verb);

      const ds = r.find("DaemonSet", "ferry-agent");
      const podLabels = (ds.spec as { template: { metadata: { labels: Record<string, string> } } })
        .template.metadata.labels;
      const svc = r.find("Service", PEERS_SERVICE).spec as {
        clusterIP: string;
        selector: Record<string, string>;
        ports: { name: string; port: number; targetPort: string | number }[];
      };
      assert.equal(svc.clusterIP, "None");
      for (const [k, v] of Object.entries(svc.selector)) assert.equal(podLabels[k], v, k);
      const peer = svc.ports.find((p) => p.name === PEER_PORT_NAME);
      assert.equal(peer?.port, 5001);
      const c = mirrorContainer(r);
      const target = c.ports.find(
        (p) => p.name === peer?.targetPort || p.containerPort === peer?.targetPort,
      );
      assert.equal(target?.containerPort, 5001);
    }),
  );

  it("the image defaults to ferry:<package version> and kustomize images: overrides it", async (t) => {
    const pkg = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as {
      version: string;
    };
    // Both containers (agent and ferry-mirror) run the one ferry image.
    const image = (r: Rendered) => {
      const images = podSpecOf(r.find("DaemonSet", "ferry-agent")).containers.map((c) => c.image);
      assert.equal(new Set(images).size, 1, images.join(", "));
      return images[0];
    };
    assert.equal(image(rendered.get("default") as Rendered), `ferry:${pkg.version}`);

    const dir = await mkdtemp(join(tmpdir(), "ferry-kustomize-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(
      join(dir, "kustomization.yaml"),
      [
        "resources:",
        // kustomize takes bases by relative path only.
        `  - ${relative(dir, KUSTOMIZATIONS.containerd)}`,
        "images:",
        "  - name: ferry",
        "    newName: registry.example.com/platform/ferry",
        "    newTag: 9.9.9",
        "",
      ].join("\n"),
    );
    assert.equal(image(await render(dir)), "registry.example.com/platform/ferry:9.9.9");
  });

  it("every RBAC rule has a comment saying why", async () => {
    const text = await readFile(join(KUBE, "base/rbac.yaml"), "utf8");
    let rules = 0;
    for (const doc of parseAllDocuments(text)) {
      const ruleList = doc.get("rules", true);
      if (ruleList === undefined) continue;
      assert.ok(isSeq(ruleList));
      for (const [i, rule] of ruleList.items.entries()) {
        assert.ok(isMap(rule));
        const comment = rule.commentBefore ?? (i === 0 ? ruleList.commentBefore : null) ?? "";
        assert.ok(
          comment.trim().length > 10,
          `${String(doc.get("kind"))} rule ${i} (${JSON.stringify(rule.toJSON())}) has a comment`,
        );
        rules++;
      }
    }
    assert.ok(rules >= 8);
  });
});

describe("the PrePull CRD", () => {
  let crd: K8sObject & {
    spec: {
      group: string;
      scope: string;
      names: Record<string, unknown>;
      versions: {
        name: string;
        served: boolean;
        storage: boolean;
        subresources?: { status?: object };
        additionalPrinterColumns?: { name: string; jsonPath: string }[];
        schema: { openAPIV3Schema: Record<string, unknown> };
      }[];
    };
  };
  let validate: (object: unknown) => boolean;
  let errors: () => string;
  before(async () => {
    const r = await render(KUBE);
    crd = r.find("CustomResourceDefinition", "prepulls.ferry.dev") as typeof crd;
    const version = crd.spec.versions[0];
    assert.ok(version);
    const ajv = new Ajv({ strict: false, allErrors: true });
    // kubernetes-models' ajv-formats: the same date-time check the API server makes.
    (addFormats as unknown as (a: Ajv) => void)(ajv);
    const compiled = ajv.compile(version.schema.openAPIV3Schema);
    validate = (o) => compiled(o) as boolean;
    errors = () => ajv.errorsText(compiled.errors);
  });

  it("has the shared names, a served v1alpha1 with status and a ready column", () => {
    assert.equal(crd.spec.group, "ferry.dev");
    assert.equal(crd.spec.scope, "Namespaced");
    assert.deepEqual(crd.spec.names, {
      kind: "PrePull",
      listKind: "PrePullList",
      plural: "prepulls",
      singular: "prepull",
      shortNames: ["pp"],
    });
    assert.equal(crd.spec.versions.length, 1);
    const v = crd.spec.versions[0]!;
    assert.deepEqual([v.name, v.served, v.storage], ["v1alpha1", true, true]);
    assert.deepEqual(v.subresources?.status, {});
    const ready = v.additionalPrinterColumns?.find((c) => c.name === "Ready");
    assert.equal(ready?.jsonPath, ".status.ready");
  });

  it("its schema is structural: every property has a type", () => {
    const walk = (schema: Record<string, unknown>, path: string) => {
      assert.ok(
        typeof schema.type === "string" || schema["x-kubernetes-preserve-unknown-fields"] === true,
        `${path} has a type`,
      );
      for (const [k, sub] of Object.entries((schema.properties ?? {}) as Record<string, never>)) {
        walk(sub, `${path}.${k}`);
      }
      if (typeof schema.items === "object")
        walk(schema.items as Record<string, unknown>, `${path}[]`);
      if (typeof schema.additionalProperties === "object") {
        walk(schema.additionalProperties as Record<string, unknown>, `${path}{}`);
      }
    };
    walk(crd.spec.versions[0]!.schema.openAPIV3Schema, "");
  });

  it("the example PrePull validates against it, with a status as the agents write it", async () => {
    const example = parse(await readFile(join(KUBE, "examples/prepull.yaml"), "utf8")) as K8sObject;
    assert.equal(example.apiVersion, "ferry.dev/v1alpha1");
    assert.equal(example.kind, "PrePull");
    assert.ok(validate(example), errors());
    const withStatus = {
      ...example,
      status: {
        ready: "1/2",
        nodes: {
          "node-a": {
            images: [
              {
                image: "registry.example.com/team-a/api:2.5.0",
                state: "present",
                digest: `sha256:${"a".repeat(64)}`,
              },
              { image: "registry.example.com/team-a/api-migrations:2.5.0", state: "present" },
            ],
            present: 2,
            total: 2,
            updated: "2026-11-23T21:00:00Z",
          },
          "node-b": {
            images: [
              {
                image: "registry.example.com/team-a/api:2.5.0",
                state: "failed",
                reason: "manifest unknown",
              },
              { image: "registry.example.com/team-a/api-migrations:2.5.0", state: "pulling" },
            ],
            present: 0,
            total: 2,
            updated: "2026-11-23T21:00:05Z",
          },
        },
      },
    };
    assert.ok(validate(withStatus), errors());
  });

  it("refuses PrePulls that break the shared contract", async () => {
    const example = parse(
      await readFile(join(KUBE, "examples/prepull.yaml"), "utf8"),
    ) as K8sObject & {
      spec: Record<string, unknown>;
    };
    const broken: [string, Record<string, unknown>][] = [
      ["no images", { images: undefined }],
      ["empty images", { images: [] }],
      ["an empty reference", { images: [""] }],
      ["required as a string", { required: "yes" }],
      ["a node selector value that is not a string", { nodeSelector: { pool: 1 } }],
      ["a pull secret without a name", { imagePullSecrets: [{}] }],
      ["a platform without an architecture", { platform: "linux" }],
    ];
    for (const [what, change] of broken) {
      const spec = { ...example.spec, ...change };
      for (const [k, v] of Object.entries(change)) if (v === undefined) delete spec[k];
      assert.equal(validate({ ...example, spec }), false, what);
    }
    assert.equal(validate({ ...example, spec: undefined }), false, "no spec");
    const badState = {
      ...example,
      status: { nodes: { n: { images: [{ image: "x", state: "done" }], present: 0, total: 1 } } },
    };
    assert.equal(validate(badState), false, "an unknown image state");
    const badTime = { ...example, status: { nodes: { n: { updated: "yesterday" } } } };
    assert.equal(validate(badTime), false, "updated that is not RFC 3339");
  });
});

describe("the NodeImages CRD", () => {
  it("is cluster-scoped with a status subresource, and validates what the controller and an agent write", async () => {
    const r = await render(KUBE);
    const crd = r.find("CustomResourceDefinition", "nodeimages.ferry.dev") as K8sObject & {
      spec: {
        group: string;
        scope: string;
        names: { kind: string; plural: string };
        versions: {
          name: string;
          subresources?: { status?: object };
          schema: { openAPIV3Schema: Record<string, unknown> };
        }[];
      };
    };
    assert.deepEqual(
      [crd.spec.group, crd.spec.scope, crd.spec.names.kind, crd.spec.names.plural],
      ["ferry.dev", "Cluster", NODE_IMAGES_KIND, NODE_IMAGES_PLURAL],
    );
    const version = crd.spec.versions[0];
    assert.ok(version);
    assert.deepEqual(version.subresources?.status, {});
    const ajv = new Ajv({ strict: false, allErrors: true });
    (addFormats as unknown as (a: Ajv) => void)(ajv);
    const validate = ajv.compile(version.schema.openAPIV3Schema);
    const prepull = {
      metadata: { namespace: "apps", name: "web" },
      spec: {
        images: ["registry.example.com/a:1"],
        required: true,
        imagePullSecrets: [{ name: "pull" }],
      },
    };
    const object = {
      apiVersion: "ferry.dev/v1alpha1",
      kind: NODE_IMAGES_KIND,
      metadata: { name: "node-a" },
      spec: nodeImagesSpec([prepull], { pool: "a" }),
      status: nodeStatus(
        [
          {
            image: "registry.example.com/a:1",
            state: "present",
            digest: `sha256:${"a".repeat(64)}`,
          },
        ],
        new Date(),
      ),
    };
    assert.ok(validate(object), ajv.errorsText(validate.errors));
    const broken = structuredClone(object);
    (broken.status.images[0] as { state: string }).state = "done";
    assert.equal(validate(broken), false, "an unknown image state");
  });
});
