import { parseArgs } from "../args.ts";
import { Metrics } from "../../observe/index.ts";
import { parsePlatform } from "../../oci/index.ts";
import type { PeerNode } from "../../peer/index.ts";
import { DEFAULT_CONCURRENCY, explainPullError, Puller } from "../../pull/index.ts";
import { formatReference, parseReference, type Reference } from "../../reference/index.ts";
import {
  createRegistryClient,
  loadConfig,
  openStore,
  parseTimeout,
  TIMEOUT_USAGE,
} from "../context.ts";
import { ExitCode, errorJson, type Output, renderError, usageError } from "../output.ts";
import { createRenderer, type PullRenderer, type RenderMode } from "../render-pull.ts";
import type { PeerMembership } from "../peers.ts";

/** The usage text of the flags of a member without a listener (`ferry pull`). */
const PEER_CLIENT_FLAGS_USAGE = `  --peers HOST:PORT,...   ask these nodes' peer listeners (ferry mirror --peer-listen) for blobs
                          before the registry; \`kubernetes\` (or kubernetes:SERVICE) for the
                          ferry-peers Service's endpoints
  --peer-key-file FILE    the fleet's shared key that signs peer requests
  --kubeconfig FILE       with --peers kubernetes outside a pod
`;

export const pullUsage = `Usage: ferry pull REF... [options]

Download images into the store: only the blobs it lacks, each verified.

Options:
  --platform OS/ARCH[/VARIANT]  platform to pick from a multi-platform image (default: this host's)
  --concurrency N               blobs downloading at once (default ${DEFAULT_CONCURRENCY})
  --hash-workers MODE           hash on worker threads: auto (when the CPU lacks SHA instructions), always, never
${TIMEOUT_USAGE}  --store DIR                   store directory (default: $FERRY_STORE or the default location)
  --config FILE                 ferry config file (default: $FERRY_CONFIG or ~/.config/ferry/config.yaml);
                                its peers.members and peers.keyFile stand in for --peers and --peer-key-file
  -q, --quiet                   print only the pulled references
  --json                        newline-delimited JSON events, ending with a "done" summary per image
                                (bytesFromPeers, bytesFromRegistry)

Fetching blobs from the fleet's peers first (docs/peers.md); this command serves nobody:
${PEER_CLIENT_FLAGS_USAGE}`;

export async function pullCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      platform: { type: "string" },
      concurrency: { type: "string" },
      "hash-workers": { type: "string", default: "auto" },
      timeout: { type: "string" },
      store: { type: "string" },
      config: { type: "string" },
      quiet: { type: "boolean", short: "q" },
      json: { type: "boolean" },
      peers: { type: "string" },
      "peer-key-file": { type: "string" },
      kubeconfig: { type: "string" },
    },
  });
  if (positionals.length === 0)
    throw usageError("pull needs at least one image reference", "e.g. `ferry pull alpine:3.20`");
  const concurrency =
    values.concurrency === undefined ? DEFAULT_CONCURRENCY : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw usageError(
      `--concurrency must be a whole number from 1 to 64, got "${values.concurrency}"`,
    );
  }
  const hashWorkers = values["hash-workers"];
  if (hashWorkers !== "auto" && hashWorkers !== "always" && hashWorkers !== "never") {
    throw usageError(`--hash-workers must be auto, always or never, got "${hashWorkers}"`);
  }
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform);
  const timeoutMs = values.timeout === undefined ? undefined : parseTimeout(values.timeout);
  // The config file's peers.members and peers.keyFile stand in for flags not given (its
  // listen is the node's mirror's, not this command's).
  const peerConfig = loadConfig(values).peers;
  const askPeers = [
    values.peers,
    values["peer-key-file"],
    peerConfig?.members,
    peerConfig?.keyFile,
  ];
  // The peer module is loaded only when peers are asked (start-up is most of a repeat pull).
  const peer = askPeers.some((p) => p !== undefined)
    ? await import("../../peer/index.ts")
    : undefined;
  const peering = await peer?.peerSettings(
    peer.withConfigDefaults(values, peerConfig && { ...peerConfig, listen: undefined }),
    { clientOnly: true },
  );
  if (peering === undefined && values.kubeconfig !== undefined)
    throw usageError("--kubeconfig goes with --peers kubernetes");
  // Validate every reference before touching the network or the store.
  let refs: Reference[];
  try {
    refs = positionals.map((p) => parseReference(p));
  } catch (err) {
    if (!values.json) throw err;
    output.out(errorJson(err));
    return exitFromJson(err);
  }
  const mode: RenderMode = values.json
    ? "json"
    : values.quiet
      ? "quiet"
      : output.isTTY
        ? "tty"
        : "plain";
  const renderer = createRenderer(
    mode,
    output,
    refs.map((r) => formatReference(r)),
  );
  const store = await openStore(values);
  const registry = createRegistryClient({ config: values.config, output, timeoutMs });
  // A member without a listener: each blob is asked of its owner among the listed peers
  // (which fetches it from the registry once for the fleet), then the runner-ups, then the
  // registry. Peer trouble is reported on stderr and never fails the pull.
  const peerLog = (entry: Record<string, unknown>) => {
    if (entry["level"] === "info") return;
    const { level: _level, msg, ...rest } = entry;
    const detail = Object.entries(rest).map(([k, v]) => `${k}=${String(v)}`);
    output.err(`ferry: ${String(msg)}${detail.length > 0 ? ` (${detail.join(", ")})` : ""}\n`);
  };
  let members: PeerMembership | undefined;
  let peerNode: PeerNode | undefined;
  if (peer !== undefined && peering !== undefined) {
    const { peerMembership } = await import("../peers.ts");
    members = await peerMembership(peering.members, values.kubeconfig, peerLog);
    peerNode = new peer.PeerNode({
      self: undefined,
      membership: members.source,
      key: peering.key,
      metrics: new Metrics(),
      log: peerLog,
    });
    peerNode.start();
  }
  const puller = new Puller({
    registry,
    store,
    concurrency,
    hashWorkers,
    ...(platform ? { platform } : {}),
    ...(peerNode === undefined ? {} : { blobLocator: peerNode.source }),
  });
  let exit: number = ExitCode.ok;
  try {
    await Promise.all(
      refs.map(async (ref, i) => {
        try {
          const summary = await puller.pull(ref, { onEvent: (e) => renderer.event(e), signal });
          renderer.done(summary);
        } catch (raw) {
          const err = await explainPullError(raw, {
            input: positionals[i] ?? "",
            ref,
            registry,
            signal,
          });
          const code = reportPullFailure(err, ref, output, renderer, mode === "json");
          if (exit === ExitCode.ok) exit = code;
        }
      }),
    );
  } finally {
    renderer.close();
    await peerNode?.close();
    members?.stop();
    await puller.close();
    await registry.close();
  }
  return exit;
}

/**
 * Reports a failed pull under the fully resolved reference (`nosuchimage:1` fails as
 * docker.io/library/nosuchimage:1): as a `--json` error event when `json` renders, else on
 * stderr. Returns the exit code.
 */
export function reportPullFailure(
  err: unknown,
  ref: Reference,
  output: Output,
  renderer: PullRenderer | undefined,
  json = false,
): number {
  const name = formatReference(ref);
  // Every renderer closes the image first (the terminal one draws its last frame), so nothing
  // about it prints after the error; the JSON renderer's failed() is the error event itself.
  renderer?.failed(name, err);
  return json ? exitFromJson(err) : renderError(err, output, name);
}

function exitFromJson(err: unknown): number {
  const sink: Output = { out() {}, err() {}, isTTY: false, columns: 80 };
  return renderError(err, sink);
}
