/**
 * The API client: in a pod, the ServiceAccount (token, CA, KUBERNETES_SERVICE_HOST/PORT);
 * elsewhere a kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config).
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { FerryError } from "../observe/index.ts";
import { DEFAULT_NAMESPACE } from "./names.ts";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface KubeClientOptions {
  /** A kubeconfig file; wins over the in-cluster ServiceAccount. */
  readonly kubeconfig?: string | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where the ServiceAccount is mounted (tests). */
  readonly serviceAccountDir?: string;
}

export interface KubeClient {
  readonly config: KubeConfig;
  /** "in-cluster" or the kubeconfig path */
  readonly source: string;
  /** The namespace from POD_NAMESPACE, the ServiceAccount, or the kubeconfig context. */
  readonly namespace: string;
}

export function loadKubeClient(options: KubeClientOptions = {}): KubeClient {
  const env = options.env ?? process.env;
  const saDir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const config = new KubeConfig();
  const kubeconfig = options.kubeconfig ?? env["KUBECONFIG"];
  const host = env["KUBERNETES_SERVICE_HOST"];
  let source: string;
  let namespace = env["POD_NAMESPACE"];
  if (kubeconfig === undefined && host !== undefined && existsSync(join(saDir, "token"))) {
    const port = env["KUBERNETES_SERVICE_PORT"] ?? "443";
    const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
    config.loadFromOptions({
      clusters: [
        { name: "in-cluster", server, caFile: join(saDir, "ca.crt"), skipTLSVerify: false },
      ],
      // tokenFile: the kubelet rotates the projected token; the client re-reads it
      users: [
        {
          name: "in-cluster",
          authProvider: { name: "tokenFile", config: { tokenFile: join(saDir, "token") } },
        },
      ],
      contexts: [{ name: "in-cluster", cluster: "in-cluster", user: "in-cluster" }],
      currentContext: "in-cluster",
    });
    source = "in-cluster";
    if (namespace === undefined && existsSync(join(saDir, "namespace")))
      namespace = readFileSync(join(saDir, "namespace"), "utf8").trim();
  } else {
    // Without any kubeconfig the client library falls back to http://localhost:8080, and the
    // failure would name that address: say what is missing instead, as kubectl's users expect.
    const home = join(env["HOME"] ?? homedir(), ".kube", "config");
    if (kubeconfig === undefined && !existsSync(home)) {
      throw new FerryError(
        "FERRY_CONFIG_INVALID",
        `no kubeconfig: KUBECONFIG is not set, ${home} does not exist, and this is not a pod with a ServiceAccount`,
        {
          hint: "pass --kubeconfig FILE or set KUBECONFIG (in a pod, mount the ServiceAccount token)",
        },
      );
    }
    try {
      if (kubeconfig !== undefined) config.loadFromFile(kubeconfig);
      else config.loadFromDefault();
    } catch (cause) {
      throw new FerryError(
        "FERRY_CONFIG_INVALID",
        `cannot load the kubeconfig${kubeconfig ? ` ${kubeconfig}` : ""}`,
        {
          hint: "pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a ServiceAccount",
          cause,
        },
      );
    }
    if (config.getCurrentCluster() === null)
      throw new FerryError("FERRY_CONFIG_INVALID", "no Kubernetes cluster configured", {
        hint: "pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a ServiceAccount",
      });
    plainHttpAsKubectlDoes(config);
    source = kubeconfig ?? "default kubeconfig";
    namespace ??= config.getContextObject(config.getCurrentContext())?.namespace;
  }
  return { config, source, namespace: namespace ?? DEFAULT_NAMESPACE };
}

/**
 * Checks the current cluster's server URL. kubectl talks plain HTTP to an http:// server (as
 * `kubectl proxy` serves); client-node refuses unless skipTLSVerify is set, which has no TLS
 * to skip there, so it is set for such a cluster.
 */
function plainHttpAsKubectlDoes(config: KubeConfig): void {
  const cluster = config.getCurrentCluster();
  if (cluster === null) return;
  let protocol: string | undefined;
  try {
    protocol = new URL(cluster.server).protocol;
  } catch {}
  if (protocol !== "http:" && protocol !== "https:")
    throw new FerryError(
      "FERRY_CONFIG_INVALID",
      `the kubeconfig's cluster "${cluster.name}" has server "${cluster.server}", not an https:// or http:// URL`,
      { hint: "set clusters[].cluster.server to the API server's URL, e.g. https://10.0.0.1:6443" },
    );
  if (protocol === "http:" && !cluster.skipTLSVerify)
    config.clusters = config.clusters.map((c) =>
      c === cluster ? { ...c, skipTLSVerify: true } : c,
    );
}
