import { resolve } from "node:path";
import { parseArgs } from "../args.ts";
import {
  LazyMount,
  type MountEvent,
  removeMountState,
  unmountDir,
  writeMountState,
} from "../../lazy/index.ts";
import { parsePlatform } from "../../oci/index.ts";
import { parseReference } from "../../reference/index.ts";
import { createRegistryClient, storeRoot } from "../context.ts";
import { asFerryError, ExitCode, formatBytes, type Output, usageError } from "../output.ts";

export const mountUsage = `Usage: ferry mount REF DIR [options]

Mount an eStargz image read-only at DIR (an existing directory) and serve it until
SIGTERM, SIGINT or \`ferry umount DIR\`. Only the table of contents is fetched
up front; a file's chunks are fetched when first read, verified against their
digests, and cached in the store. Files the image prioritizes (those before its
prefetch landmark) are fetched in the background right after mounting. Needs
root and /dev/fuse. Logs go to stderr.

Options:
  --record FILE                 write the paths of files read, in first-read order, one per
                                line (feed it to \`ferry convert --prioritize FILE\`)
  --no-prefetch                 do not prefetch the prioritized files
  --fetch-timeout SECONDS       a chunk fetch that receives nothing for this long fails with EIO (default 10)
  --platform OS/ARCH[/VARIANT]  platform to pick from a multi-platform image (default: this host's)
  --store DIR                   store whose chunk cache to use (default: $FERRY_STORE or ~/.local/share/ferry/store)
  --config FILE                 ferry config file (default: $FERRY_CONFIG or ~/.config/ferry/config.yaml)
`;

export const umountUsage = `Usage: ferry umount DIR

Stop the \`ferry mount\` serving DIR: it unmounts and writes its --record file,
then exits. A mount left behind by a killed process is unmounted directly.
`;

export async function mountCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      record: { type: "string" },
      "no-prefetch": { type: "boolean" },
      "fetch-timeout": { type: "string" },
      platform: { type: "string" },
      store: { type: "string" },
      config: { type: "string" },
    },
  });
  const [input, dirArg] = positionals;
  if (input === undefined || dirArg === undefined)
    throw usageError(
      "mount needs an image reference and a directory",
      "e.g. `ferry mount registry.example/app:1 /mnt/app`",
    );
  if (positionals.length > 2) throw usageError("mount: too many arguments");
  const timeout = values["fetch-timeout"] === undefined ? 10 : Number(values["fetch-timeout"]);
  if (!(timeout > 0)) throw usageError(`--fetch-timeout must be a positive number of seconds`);
  const ref = parseReference(input);
  const dir = resolve(dirArg);
  const registry = createRegistryClient({ config: values.config, output });
  const log = (text: string) => output.err(`ferry mount: ${text}\n`);
  try {
    const mount = await LazyMount.mount({
      registry,
      repository: { domain: ref.domain, path: ref.path },
      reference: ref.digest ?? ref.tag ?? "",
      dir,
      storeDir: storeRoot({ store: values.store }),
      platform: values.platform === undefined ? undefined : parsePlatform(values.platform),
      prefetch: values["no-prefetch"] !== true,
      recordFile: values.record === undefined ? undefined : resolve(values.record),
      fetchTimeoutMs: timeout * 1000,
      onEvent: (event) => log(describe(event)),
    });
    await writeMountState({ pid: process.pid, dir, reference: input });
    const stop = () => void mount.unmount();
    // The signal may have come while mounting: unmount at once then.
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });
    // A second signal while unmounting must not kill the process before the record is written.
    const ignore = () => undefined;
    process.on("SIGTERM", ignore);
    process.on("SIGINT", ignore);
    try {
      await mount.closed;
    } finally {
      signal.removeEventListener("abort", stop);
      process.off("SIGTERM", ignore);
      process.off("SIGINT", ignore);
      await removeMountState(dir);
    }
    const s = mount.stats();
    log(
      `unmounted ${dir}; fetched ${s.fetchedBytes + s.tocBytes} of ${s.layerBytes} layer bytes (${formatBytes(s.fetchedBytes + s.tocBytes)} of ${formatBytes(s.layerBytes)}: TOCs ${formatBytes(s.tocBytes)}, ${s.fetchedChunks} chunks ${formatBytes(s.fetchedBytes)}; ${s.cachedChunks} chunks from the cache)`,
    );
  } finally {
    await registry.close();
  }
  return ExitCode.ok;
}

function describe(event: MountEvent): string {
  switch (event.type) {
    case "mounted":
      return `mounted ${event.dir} (${event.layers} layers, ${event.inodes} files)`;
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

export async function umountCommand(args: string[], output: Output): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const [dir] = positionals;
  if (dir === undefined || positionals.length > 1) throw usageError("umount needs one directory");
  const { stoppedPid } = await unmountDir(dir);
  output.err(
    `ferry umount: ${resolve(dir)} unmounted${stoppedPid === undefined ? "" : ` (ferry mount ${stoppedPid} stopped)`}\n`,
  );
  return ExitCode.ok;
}
