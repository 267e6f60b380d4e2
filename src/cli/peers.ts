// `--peers`: the members a node shares blobs with, for `ferry mirror` and `ferry pull`.
import { FerryError } from "../observe/index.ts";
import { type MembershipSource, type PeerMembers, StaticMembership } from "../peer/index.ts";
import { usageError } from "./output.ts";

/** A membership source and how to stop it. */
export interface PeerMembership {
  source: MembershipSource;
  /** "static" or "kubernetes SERVICE in NAMESPACE (CLIENT SOURCE)", for the log. */
  from: string;
  stop(): void;
}

/**
 * The members `--peers` names: the static list, or the ready endpoints of the ferry-peers
 * headless Service's EndpointSlices (kube/), read with the in-cluster ServiceAccount or a
 * kubeconfig and followed by a watch.
 */
export async function peerMembership(
  members: PeerMembers,
  kubeconfig: string | undefined,
  log: (entry: Record<string, unknown>) => void,
): Promise<PeerMembership> {
  if (members.kind === "static") {
    if (kubeconfig !== undefined) throw usageError("--kubeconfig goes with --peers kubernetes");
    return { source: new StaticMembership(members.peers), from: "static", stop() {} };
  }
  // Kubernetes' client library takes a second to load: only a kubernetes membership pays for it.
  const { loadKubeClient, PEERS_SERVICE, startPeerMembership } = await import("../kube/index.ts");
  const client = loadKubeClient({ kubeconfig });
  const service = members.service ?? PEERS_SERVICE;
  let membership: Awaited<ReturnType<typeof startPeerMembership>>;
  try {
    membership = await startPeerMembership({
      config: client.config,
      namespace: client.namespace,
      service,
      log,
    });
  } catch (cause) {
    throw new FerryError(
      "FERRY_UNREACHABLE",
      `cannot list the EndpointSlices of Service ${service} in namespace ${client.namespace} (${client.source})`,
      {
        hint: "check the API server is reachable and the ServiceAccount may list and watch endpointslices (deploy/kubernetes/base/rbac.yaml); see docs/kubernetes.md",
        cause,
      },
    );
  }
  return {
    source: membership,
    from: `kubernetes ${service} in ${client.namespace} (${client.source})`,
    stop: () => membership.stop(),
  };
}
