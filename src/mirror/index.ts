/** The pull-through registry mirror: the distribution API read side over the store. */
export {
  type AccessPolicy,
  type Client,
  loadAccessPolicy,
  parseAccessPolicy,
  underPrefix,
} from "./access.ts";
export { DistributionError, isUpstreamFailure, toDistributionError } from "./errors.ts";
export { Mirror, type MirrorOptions } from "./mirror.ts";
export { type MirrorRequest, parseRequest } from "./route.ts";
export { ANY_REGISTRY, parseServedList, ServedRegistries } from "./served.ts";
export { type MirrorServerOptions, type RunningMirror, startMirrorServer } from "./server.ts";
export { type WarmResult, warmThroughMirror } from "./warm.ts";
