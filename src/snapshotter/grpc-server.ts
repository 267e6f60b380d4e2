// containerd.services.snapshots.v1.Snapshots on a unix socket, answering from a Snapshotter.
// @grpc/grpc-js and @grpc/proto-loader are loaded here only (the rest of the CLI never pays for
// them); the single executable carries the .proto parsed, as JSON, like the runtime module's.
import { mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type {
  handleServerStreamingCall,
  handleUnaryCall,
  Server,
  ServiceDefinition,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { embeddedAsset, FerryError } from "../observe/index.ts";
import { SnapshotError, type SnapshotRefusal } from "./errors.ts";
import type { Mount } from "./mounts.ts";
import type { SnapshotInfo, Snapshotter } from "./snapshotter.ts";

export const SNAPSHOTS_PROTO = fileURLToPath(new URL("./snapshots.proto", import.meta.url));
/** The key of SNAPSHOTS_PROTO, parsed with keepCase into protobufjs JSON, in the single executable. */
export const EMBEDDED_SNAPSHOTS_PROTO = "snapshotter/protos.json";
const SERVICE = "containerd.services.snapshots.v1.Snapshots";

const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** gRPC status codes containerd's errdefs turns back into its own errors. */
const STATUS: Record<SnapshotRefusal, number> = {
  "invalid-argument": 3,
  "not-found": 5,
  "already-exists": 6,
  "failed-precondition": 9,
};
const UNKNOWN = 2;
const SHUTDOWN_GRACE_MS = 2000;
const LIST_BATCH = 200;

const KIND = { view: "VIEW", active: "ACTIVE", committed: "COMMITTED" } as const;

interface Timestamp {
  seconds: string;
  nanos: number;
}

interface Info {
  name: string;
  parent: string;
  kind: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  labels: Record<string, string>;
}

export interface SnapshotServer {
  readonly socket: string;
  close(): Promise<void>;
}

/** Serves `snapshotter` on `socket` (a stale socket file there is replaced); `onError` sees failures that are not refusals. */
export async function serveSnapshots(
  snapshotter: Snapshotter,
  socket: string,
  onError: (method: string, error: unknown) => void,
): Promise<SnapshotServer> {
  const [grpc, loader] = await Promise.all([import("@grpc/grpc-js"), import("@grpc/proto-loader")]);
  // ferry reports gRPC failures itself, with a hint; grpc-js would also print its own "E ..." lines.
  grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  const embedded = embeddedAsset(EMBEDDED_SNAPSHOTS_PROTO);
  const definition =
    embedded === undefined
      ? await loader.load(SNAPSHOTS_PROTO, LOADER_OPTIONS)
      : loader.fromJSON(JSON.parse(embedded.toString("utf8")), LOADER_OPTIONS);
  const service = definition[SERVICE] as ServiceDefinition;

  const answer =
    <Req, Res>(
      method: string,
      work: (request: Req) => Res | Promise<Res>,
    ): handleUnaryCall<Req, Res> =>
    (call, callback) => {
      Promise.resolve()
        .then(() => work(call.request))
        .then(
          (value) => callback(null, value),
          (error: unknown) => callback(serviceError(method, error, onError)),
        );
    };
  const list: handleServerStreamingCall<unknown, unknown> = (call) => {
    // Filters are not applied: containerd checks what it asked for in what comes back.
    const all = snapshotter.list().map(toInfo);
    // A few hundred per message keeps each well under gRPC's 4 MiB default limit.
    for (let i = 0; i < all.length; i += LIST_BATCH)
      call.write({ info: all.slice(i, i + LIST_BATCH) });
    call.end();
  };
  type Labelled = { key: string; parent: string; labels: Record<string, string> };
  const handlers: UntypedServiceImplementation = {
    Prepare: answer("Prepare", async (r: Labelled) => ({
      mounts: (await snapshotter.prepare(r.key, r.parent, r.labels)).map(toMount),
    })),
    View: answer("View", async (r: Labelled) => ({
      mounts: (await snapshotter.view(r.key, r.parent, r.labels)).map(toMount),
    })),
    Mounts: answer("Mounts", (r: { key: string }) => ({
      mounts: snapshotter.mounts(r.key).map(toMount),
    })),
    Commit: answer(
      "Commit",
      async (r: { name: string; key: string; labels: Record<string, string> }) => {
        await snapshotter.commit(r.name, r.key, r.labels);
        return {};
      },
    ),
    Remove: answer("Remove", async (r: { key: string }) => {
      await snapshotter.remove(r.key);
      return {};
    }),
    Stat: answer("Stat", (r: { key: string }) => ({ info: toInfo(snapshotter.stat(r.key)) })),
    Update: answer(
      "Update",
      async (r: {
        info: { name: string; labels: Record<string, string> } | null;
        update_mask: { paths: string[] } | null;
      }) => {
        if (r.info === null)
          throw new SnapshotError("invalid-argument", "Update needs the snapshot's info");
        const paths = r.update_mask?.paths ?? [];
        return { info: toInfo(await snapshotter.update(r.info.name, r.info.labels, paths)) };
      },
    ),
    List: list,
    Usage: answer("Usage", async (r: { key: string }) => {
      const u = await snapshotter.usage(r.key);
      return { size: String(u.size), inodes: String(u.inodes) };
    }),
    Cleanup: answer("Cleanup", async () => {
      await snapshotter.cleanup();
      return {};
    }),
  };
  const server: Server = new grpc.Server();
  server.addService(service, handlers);
  try {
    await mkdir(dirname(socket), { recursive: true });
    await rm(socket, { force: true });
  } catch (cause) {
    throw bindFailed(socket, cause);
  }
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(bindFailed(socket, err)) : resolve(),
    ),
  );
  return {
    socket,
    close: () =>
      new Promise<void>((resolve) => {
        // containerd keeps its connection open: calls under way may finish, then it is cut.
        const cut = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(cut);
          resolve();
        });
      }),
  };
}

function toMount(m: Mount) {
  return { type: m.type, source: m.source, target: m.target, options: [...m.options] };
}

function timestamp(ms: number): Timestamp {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

function toInfo(i: SnapshotInfo): Info {
  return {
    name: i.name,
    parent: i.parent,
    kind: KIND[i.kind],
    created_at: timestamp(i.created),
    updated_at: timestamp(i.updated),
    labels: { ...i.labels },
  };
}

function serviceError(
  method: string,
  error: unknown,
  onError: (method: string, error: unknown) => void,
) {
  if (error instanceof SnapshotError)
    return { code: STATUS[error.refusal], details: error.message };
  onError(method, error);
  return { code: UNKNOWN, details: error instanceof Error ? error.message : String(error) };
}

/** sun_path holds 108 bytes with its terminating NUL (Linux). */
const SOCKET_PATH_MAX = 107;

function bindFailed(socket: string, cause: unknown): FerryError {
  const bytes = Buffer.byteLength(socket);
  const hint =
    bytes > SOCKET_PATH_MAX
      ? `the path is ${bytes} bytes and a unix socket's path may have at most ${SOCKET_PATH_MAX}: choose a shorter --socket (and name the same path in containerd's [proxy_plugins])`
      : "ferry must be able to create the socket there (as root, in a directory it may write); containerd's config names this path in [proxy_plugins]";
  return new FerryError("FERRY_INVALID_ARGUMENT", `cannot listen on ${socket}`, {
    hint,
    fields: { socket },
    cause,
  });
}
