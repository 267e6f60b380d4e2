/**
 * Peer membership from Kubernetes: the endpoints of the agents' headless Service
 * (`ferry-peers`), read from its EndpointSlices (label kubernetes.io/service-name) and kept
 * current by a watch. Shaped as peer/'s MembershipSource (members + onChange) without
 * importing it; the CLI hands one to the other.
 */
import { DiscoveryV1Api, type KubeConfig, type V1EndpointSlice } from "@kubernetes/client-node";
import { CollectionWatch } from "./watcher.ts";

export const PEERS_SERVICE = "ferry-peers";
export const PEER_PORT_NAME = "peer";
const SERVICE_LABEL = "kubernetes.io/service-name";

export interface PeerMembershipOptions {
  readonly config: KubeConfig;
  /** the agents' namespace */
  readonly namespace: string;
  readonly service?: string;
  readonly portName?: string;
  readonly log: (entry: Record<string, unknown>) => void;
}

export interface PeerMembership {
  /** `host:port` of every ready endpoint, sorted, without duplicates. */
  members(): string[];
  onChange(listener: () => void): () => void;
  stop(): void;
}

/** Pure: the ready addresses of the slices, with the named port. */
export function peerAddresses(slices: readonly V1EndpointSlice[], portName: string): string[] {
  const out = new Set<string>();
  for (const slice of slices) {
    const port = slice.ports?.find((p) => p.name === portName)?.port;
    if (port === undefined || port === null) continue;
    for (const endpoint of slice.endpoints ?? []) {
      // ready unset means ready (the API's convention); terminating endpoints are not ready
      if (endpoint.conditions?.ready === false) continue;
      for (const address of endpoint.addresses ?? []) {
        out.add(address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`);
      }
    }
  }
  return [...out].sort();
}

export async function startPeerMembership(options: PeerMembershipOptions): Promise<PeerMembership> {
  const service = options.service ?? PEERS_SERVICE;
  const portName = options.portName ?? PEER_PORT_NAME;
  const discovery = options.config.makeApiClient(DiscoveryV1Api);
  const listeners = new Set<() => void>();
  let members: string[] = [];
  const selector = `${SERVICE_LABEL}=${service}`;
  const watch = new CollectionWatch<V1EndpointSlice>({
    config: options.config,
    path: `/apis/discovery.k8s.io/v1/namespaces/${options.namespace}/endpointslices`,
    labelSelector: selector,
    list: () =>
      discovery.listNamespacedEndpointSlice({
        namespace: options.namespace,
        labelSelector: selector,
      }),
    onChange: (slices) => {
      const next = peerAddresses(slices, portName);
      if (next.join(",") === members.join(",")) return;
      members = next;
      for (const listener of listeners) listener();
    },
    onError: (error) =>
      options.log({
        level: "warn",
        msg: "watch of peer EndpointSlices restarting",
        error: String(error),
      }),
  });
  await watch.start();
  return {
    members: () => [...members],
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop: () => watch.stop(),
  };
}
