/** Node-to-node sharing: membership, rendezvous ranking, the signed peer server and source. */
export { type AccessVerdict, UpstreamAccess, type UpstreamAccessOptions } from "./access.ts";
export { PeerBlobs, peerRequest } from "./blobs.ts";
export { FanOut, type Relay, relaysBody, SMALL_BLOB_BYTES } from "./fan-out.ts";
export { Liveness, type LivenessOptions } from "./liveness.ts";
export {
  type MembershipSource,
  parsePeerAddress,
  parsePeerList,
  StaticMembership,
} from "./membership.ts";
export { type PeerCounters, peerCounters } from "./metrics.ts";
export { PeerNode, type PeerListenOptions, type PeerNodeOptions } from "./node.ts";
export { rank, score } from "./rendezvous.ts";
export {
  type BlobFetcher,
  type PeerServerOptions,
  type RunningPeerServer,
  startPeerServer,
} from "./server.ts";
export {
  loadPeerKey,
  MAX_SKEW_MS,
  PEER_AUTH_HEADER,
  signRequest,
  verifyRequest,
} from "./signing.ts";
export {
  type BlobDescriptor,
  type PeerLocation,
  PeerSource,
  type PeerSourceOptions,
  SIZE_HEADER,
  STORED_ONLY_HEADER,
  UPSTREAM_AUTH_HEADER,
} from "./source.ts";
export { Throttle } from "./throttle.ts";
export {
  PEER_FLAGS_USAGE,
  type PeerConfigDefaults,
  type PeerFlags,
  type PeerMembers,
  type PeerSettings,
  peerSettings,
  withConfigDefaults,
} from "./options.ts";
