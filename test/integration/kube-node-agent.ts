// The Kubernetes node agent run in-process, as `ferry agent --kubernetes` runs it: the kube
// side (lists, taint, PrePull status) against an API server and the agent warming a real
// containerd over CRI. Shared by the node-agent integration tests.
import { mkdir } from "node:fs/promises";
import { type AgentOptions, runAgent } from "../../src/agent/index.ts";
import { anonymous } from "../../src/config/index.ts";
import { type KubeAgent, loadKubeClient, startKubeAgent } from "../../src/kube/index.ts";
import { Metrics } from "../../src/observe/index.ts";
import { CriTarget } from "../../src/runtime/index.ts";

export interface InProcessNodeAgent {
  kube: KubeAgent;
  metrics: Metrics;
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

export async function startInProcessNodeAgent(o: {
  node: string;
  /** The agent's state directory (created). */
  stateDir: string;
  kubeconfig: string;
  containerdSocket: string;
  startupTaintKey: string;
  extra?: Partial<Parameters<typeof startKubeAgent>[0]>;
  /** The agent's waits before it tries a failed image again (tests shorten them). */
  retry?: AgentOptions["retry"];
}): Promise<InProcessNodeAgent> {
  await mkdir(o.stateDir, { recursive: true });
  const metrics = new Metrics();
  const logs: Record<string, unknown>[] = [];
  const log = (e: Record<string, unknown>) => logs.push(e);
  const client = loadKubeClient({
    kubeconfig: o.kubeconfig,
    env: { POD_NAMESPACE: "ferry-system" },
  });
  const kube = await startKubeAgent({
    client,
    nodeName: o.node,
    namespace: client.namespace,
    stateDir: o.stateDir,
    startupTaintKey: o.startupTaintKey,
    metrics,
    log,
    resyncMs: 500,
    ...o.extra,
  });
  const abort = new AbortController();
  const running = runAgent({
    listFile: kube.listFile,
    targets: ["containerd"],
    host: "127.0.0.1",
    port: 0,
    node: o.node,
    metrics,
    ...(o.retry === undefined ? {} : { retry: o.retry }),
    openTargets: async () => {
      const cri = new CriTarget({ endpoint: `unix://${o.containerdSocket}` });
      return {
        targets: [kube.wrapTarget(cri)],
        credentials: anonymous,
        store: undefined,
        close: () => cri.close(),
      };
    },
    log,
    signal: abort.signal,
  });
  return {
    kube,
    metrics,
    logs,
    async stop() {
      abort.abort();
      await running;
      await kube.stop();
    },
  };
}
