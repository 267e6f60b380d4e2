import { join, resolve } from "node:path";
import type { LazyLayersEvent } from "../../lazy/index.ts";
import {
  type RemoteEvent,
  RegistryLayers,
  serveSnapshots,
  Snapshotter,
  type SnapshotterEvent,
} from "../../snapshotter/index.ts";
import { parseSize } from "../../store/index.ts";
import { parseArgs } from "../args.ts";
import { createRegistryClient, storeRoot } from "../context.ts";
import { asFerryError, ExitCode, formatBytes, type Output, usageError } from "../output.ts";

export const snapshotterUsage = `Usage: ferry snapshotter [options]

Serve containerd's snapshots API on a unix socket, as a proxy snapshotter plugin
(\`[proxy_plugins.ferry] type = "snapshot"\` in containerd's config.toml). Layers that
containerd prepares with remote-snapshot labels (\`ctr-remote image rpull\`, or the CRI
plugin with disable_snapshot_annotations = false) and that are eStargz with a verified
TOC are mounted lazily, one read-only FUSE filesystem per layer: containerd never
downloads them, and a file's chunks are fetched when first read, verified, and cached
in the store. Every other layer is unpacked by containerd as with the overlayfs
snapshotter. Snapshots survive a restart. Needs root and /dev/fuse. Logs go to stderr.

Options:
  --socket PATH              socket to serve on (default /run/ferry/snapshotter.sock)
  --root DIR                 where snapshots and their metadata live (default /var/lib/ferry/snapshotter)
  --no-lazy                  never mount layers lazily (a plain overlay snapshotter)
  --no-prefetch              do not prefetch the files each layer prioritizes
  --background-fetch RATE    fetch the rest of each lazy layer behind the reads at RATE per second
                             (e.g. 10MiB), until the cache holds all of it (default: off)
  --fetch-timeout SECONDS    a chunk fetch that receives nothing for this long fails with EIO (default 10)
  --store DIR                store whose chunk cache to use (default: $FERRY_STORE or ~/.local/share/ferry/store)
  --config FILE              ferry config file: registry credentials, mirrors, TLS (default: $FERRY_CONFIG or ~/.config/ferry/config.yaml)
`;

const DEFAULT_SOCKET = "/run/ferry/snapshotter.sock";
const DEFAULT_ROOT = "/var/lib/ferry/snapshotter";

export async function snapshotterCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      socket: { type: "string" },
      root: { type: "string" },
      "no-lazy": { type: "boolean" },
      "no-prefetch": { type: "boolean" },
      "background-fetch": { type: "string" },
      "fetch-timeout": { type: "string" },
      store: { type: "string" },
      config: { type: "string" },
    },
  });
  if (positionals.length > 0) throw usageError("snapshotter takes no arguments");
  const timeout = values["fetch-timeout"] === undefined ? 10 : Number(values["fetch-timeout"]);
  if (!(timeout > 0)) throw usageError("--fetch-timeout must be a positive number of seconds");
  const background = values["background-fetch"];
  const backgroundBytesPerSecond =
    background === undefined
      ? undefined
      : parseSize(background.replace(/\/s$/, ""), "--background-fetch");
  if (backgroundBytesPerSecond === 0) throw usageError("--background-fetch must be more than 0");
  const socket = resolve(values.socket ?? DEFAULT_SOCKET);
  const log = (text: string) => output.err(`ferry snapshotter: ${text}\n`);
  const registry = createRegistryClient({ config: values.config, output });
  const root = resolve(values.root ?? DEFAULT_ROOT);
  try {
    const remote =
      values["no-lazy"] === true
        ? undefined
        : await RegistryLayers.open({
            registry,
            dir: join(root, "lazy"),
            storeDir: storeRoot({ store: values.store }),
            fetchTimeoutMs: timeout * 1000,
            prefetch: values["no-prefetch"] !== true,
            backgroundBytesPerSecond,
            onEvent: (event) => log(describeRemote(event)),
          });
    try {
      const snapshotter = await Snapshotter.open({
        root,
        remote,
        onEvent: (event) => log(describe(event)),
      });
      const server = await serveSnapshots(snapshotter, socket, (method, error) =>
        log(`${method} failed: ${asFerryError(error).message}`),
      );
      log(`listening on ${socket}`);
      await new Promise<void>((done) => {
        if (signal.aborted) done();
        else signal.addEventListener("abort", () => done(), { once: true });
      });
      await server.close();
    } finally {
      // Also when it could not start: the lazy layers' filesystem must not outlive ferry.
      await remote?.close();
    }
    log("stopped");
  } finally {
    await registry.close();
  }
  return ExitCode.ok;
}

function describe(event: SnapshotterEvent): string {
  switch (event.type) {
    case "remote-committed":
      return `layer ${event.layer} mounted lazily as ${event.name}`;
    case "remounted":
      return `layer ${event.layer} of ${event.name} mounted again`;
    case "remount-failed":
      return `layer ${event.layer} of ${event.name} could not be mounted again (its reads fail until it is): ${asFerryError(event.error).message}`;
    case "orphan-removed":
      return `removed ${event.dir}, which no snapshot owns`;
    case "not-lazy":
      return `warning: layer ${event.layer} is unpacked whole instead: ${asFerryError(event.error).message}`;
  }
}

function describeRemote(event: RemoteEvent): string {
  if (event.type === "not-lazy")
    return `layer ${event.layer} is not lazy (${event.why}): unpacked whole`;
  return `snapshot ${event.snapshot}: ${describeMount(event.event)}`;
}

function describeMount(event: LazyLayersEvent): string {
  switch (event.type) {
    case "background-done":
      return `complete: fetched the rest (${formatBytes(event.bytes)}) in the background in ${event.ms} ms${event.failed > 0 ? `; ${event.failed} ranges failed and are fetched when read` : ""}`;
    case "mounted":
      return `mounted at ${event.dir} (${event.inodes} files)`;
    case "prefetch-done":
      return `prefetched ${event.files} files (${event.chunks} chunks, ${formatBytes(event.bytes)}) in ${event.ms} ms`;
    case "prefetch-failed":
      return `prefetch stopped at /${event.path}: ${asFerryError(event.error).message}`;
    case "read-failed":
      return `read of /${event.path} failed (EIO): ${asFerryError(event.error).message}`;
    case "internal-error":
      return `error answering a request (EIO): ${asFerryError(event.error).message}`;
  }
}
