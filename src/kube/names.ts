/** Names shared with the manifests in deploy/kubernetes and the other kube files. */
export const PREPULL_GROUP = "ferry.dev";
export const PREPULL_VERSION = "v1alpha1";
export const PREPULL_PLURAL = "prepulls";
export const PREPULL_KIND = "PrePull";
/** ConfigMaps with this label (value "true") in the agent's namespace hold image lists. */
export const IMAGE_LIST_LABEL = "ferry.dev/image-list";
/** The ConfigMap key holding the list (the file image list's format). */
export const IMAGE_LIST_KEY = "images.yaml";
/** PrePulls the workload controller writes for rollouts; its node runner handles them. */
export const WORKLOAD_PREPULL_LABEL = "ferry.dev/workload-prepull";
/** Prefixed so cluster-autoscaler treats it as a startup taint. */
export const DEFAULT_STARTUP_TAINT_KEY =
  "startup-taint.cluster-autoscaler.kubernetes.io/ferry-images";
export const STARTUP_TAINT_VALUE = "pending";
export const STARTUP_TAINT_EFFECT = "NoSchedule";
export const DEFAULT_NAMESPACE = "ferry-system";
/** kubelet's default imageGCHighThresholdPercent. */
export const DEFAULT_IMAGE_GC_HIGH_PERCENT = 85;
/** The Event source component. */
export const COMPONENT = "ferry-agent";
/** One per node (name = the node's name): what it should hold (spec) and holds (status). */
export const NODE_IMAGES_KIND = "NodeImages";
export const NODE_IMAGES_PLURAL = "nodeimages";
