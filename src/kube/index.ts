/**
 * Kubernetes bindings for `ferry agent --kubernetes`: the API client, image lists from
 * ConfigMaps and PrePulls, PrePull status, pull secrets, the startup taint, headroom against
 * kubelet's image GC, Events and metrics. `workload/` adds the workload pre-pull.
 */
export {
  type KubeClient,
  type KubeClientOptions,
  loadKubeClient,
  SERVICE_ACCOUNT_DIR,
} from "./client.ts";
export {
  type FleetCell,
  type FleetRow,
  type FleetView,
  fleetView,
  imageKey,
  withFleet,
} from "./fleet.ts";
export {
  decideHeadroom,
  type FilesystemUsage,
  filesystemUsage,
  type HeadroomDecision,
} from "./headroom.ts";
export {
  COMPONENT,
  DEFAULT_IMAGE_GC_HIGH_PERCENT,
  DEFAULT_NAMESPACE,
  DEFAULT_STARTUP_TAINT_KEY,
  IMAGE_LIST_KEY,
  IMAGE_LIST_LABEL,
  NODE_IMAGES_KIND,
  NODE_IMAGES_PLURAL,
  PREPULL_GROUP,
  PREPULL_KIND,
  PREPULL_PLURAL,
  PREPULL_VERSION,
  STARTUP_TAINT_EFFECT,
  STARTUP_TAINT_VALUE,
} from "./names.ts";
export {
  type KubeAgent,
  type KubeAgentOptions,
  type KubeAgentStatus,
  startKubeAgent,
  type TaintMode,
} from "./node-agent.ts";
export { REPORT_MODES, type ReportMode } from "./node-assignments.ts";
export {
  type AssignedImage,
  aggregate,
  labelsHash,
  type NodeImagesObject,
  nodeImagesSpec,
} from "./node-images.ts";
export {
  type NodeImageStatus,
  type NodeStatus,
  nodeStatus,
  type PrePull,
  readyCount,
} from "./prepull.ts";
export { credentialsFromSecret } from "./pull-secrets.ts";
export { planTaintAddition, planTaintRemoval, type Taint } from "./taint.ts";
export {
  GATE_ANNOTATION,
  GATE_VALUE,
  GateReason,
  startWorkloadPrePull,
  type WorkloadPrePull,
  type WorkloadPrePullEvent,
  type WorkloadPrePullOptions,
} from "./workload/index.ts";
export {
  checkGateTimeout,
  checkPrePullBudget,
  DEFAULT_IMAGE_FS_PATH,
  MAX_PREPULL_BUDGET,
  parsePrePullBudget,
  type KubernetesMode,
  type KubernetesModeOptions,
  startKubernetesMode,
} from "./mode.ts";
export {
  PEER_PORT_NAME,
  PEERS_SERVICE,
  type PeerMembership,
  type PeerMembershipOptions,
  peerAddresses,
  startPeerMembership,
} from "./peers.ts";
