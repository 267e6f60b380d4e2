/**
 * A gRPC connection to a runtime socket, loading ferry's own .proto files at run time.
 * @grpc/grpc-js and @grpc/proto-loader are imported on first use: together they cost
 * ~130 ms of start-up, which CLI commands that never talk to a runtime should not pay.
 */
import { fileURLToPath } from "node:url";
import type { Client, ServiceError } from "@grpc/grpc-js";
import type { MethodDefinition, PackageDefinition } from "@grpc/proto-loader";
import { embeddedAsset } from "../observe/index.ts";

export const PROTO_FILES = [
  fileURLToPath(new URL("./cri.proto", import.meta.url)),
  fileURLToPath(new URL("./containerd-images.proto", import.meta.url)),
];

/** The key of PROTO_FILES, parsed with keepCase into protobufjs JSON, in the single executable. */
export const EMBEDDED_PROTOS = "runtime/protos.json";

const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** gRPC status codes ferry tells apart (grpc-js is not loaded when these are read). */
export const GrpcStatus = {
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
} as const;

const CHANNEL_OPTIONS = {
  // A listed image set can be large; the default 4 MiB is not much for ListImages.
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  // Reconnect soon after the runtime comes back, rather than after up to two minutes.
  "grpc.initial_reconnect_backoff_ms": 250,
  "grpc.max_reconnect_backoff_ms": 5000,
};

let protos: Promise<PackageDefinition> | undefined;

/** The .proto files, parsed once per process: a target reconnecting opens a channel again. */
function loadProtos(): Promise<PackageDefinition> {
  protos ??= import("@grpc/proto-loader").then((loader) => {
    // The single executable has no .proto files on disk: it carries them parsed, as JSON.
    const embedded = embeddedAsset(EMBEDDED_PROTOS);
    return embedded === undefined
      ? loader.load(PROTO_FILES, LOADER_OPTIONS)
      : loader.fromJSON(JSON.parse(embedded.toString("utf8")), LOADER_OPTIONS);
  });
  protos.catch(() => {
    protos = undefined;
  });
  return protos;
}

export interface GrpcCallOptions {
  readonly signal?: AbortSignal | undefined;
  /** Deadline for the call; none when absent. */
  readonly timeoutMs?: number | undefined;
  /** Request headers, e.g. `containerd-namespace`. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === "number";
}

export class GrpcConnection {
  readonly #grpc: typeof import("@grpc/grpc-js");
  readonly #client: Client;
  readonly #definition: PackageDefinition;

  private constructor(
    grpc: typeof import("@grpc/grpc-js"),
    client: Client,
    definition: PackageDefinition,
  ) {
    this.#grpc = grpc;
    this.#client = client;
    this.#definition = definition;
  }

  /** Loads the protos and makes a channel to `target` ("unix:///path" or "host:port"); connects lazily. */
  static async open(target: string): Promise<GrpcConnection> {
    const [grpc, definition] = await Promise.all([import("@grpc/grpc-js"), loadProtos()]);
    const client = new grpc.Client(target, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    return new GrpcConnection(grpc, client, definition);
  }

  /** One unary call of `service` ("runtime.v1.ImageService") `method`; rejects with the ServiceError. */
  call(
    service: string,
    method: string,
    request: object,
    options: GrpcCallOptions = {},
  ): Promise<unknown> {
    const definition = this.#method(service, method);
    const metadata = new this.#grpc.Metadata();
    for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
    const callOptions =
      options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
    return new Promise((resolve, reject) => {
      const { signal } = options;
      const call = this.#client.makeUnaryRequest<object, object>(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        request,
        metadata,
        callOptions,
        (err, value) => {
          signal?.removeEventListener("abort", cancel);
          if (err) reject(err);
          else resolve(value);
        },
      );
      function cancel() {
        call.cancel();
      }
      if (signal?.aborted) cancel();
      else signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  close(): void {
    this.#client.close();
  }

  #method(service: string, method: string): MethodDefinition<object, object> {
    const definition = this.#definition[service];
    const found =
      definition !== undefined && !("format" in definition) ? definition[method] : undefined;
    // Only a mistake in ferry's own code (a name missing from its .proto) gets here.
    if (found === undefined) throw new Error(`${service}/${method} is not in ferry's .proto files`);
    return found;
  }
}
