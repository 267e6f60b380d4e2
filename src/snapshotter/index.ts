/** containerd's remote snapshotter: the snapshots gRPC service, lazy eStargz layers as overlay lower dirs, and plain overlay snapshots for every other layer. */
export {
  EMBEDDED_SNAPSHOTS_PROTO,
  type SnapshotServer,
  SNAPSHOTS_PROTO,
  serveSnapshots,
} from "./grpc-server.ts";
export { TARGET_LABEL } from "./labels.ts";
export { type RegistryLayersOptions, RegistryLayers, type RemoteEvent } from "./remote.ts";
export {
  type RemoteLayers,
  type SnapshotInfo,
  Snapshotter,
  type SnapshotterEvent,
  type SnapshotterOptions,
} from "./snapshotter.ts";
