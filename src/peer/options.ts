import { FerryError } from "../observe/index.ts";
import { parseSize } from "../store/index.ts";
import { parsePeerAddress, parsePeerList } from "./membership.ts";
import { loadPeerKey } from "./signing.ts";

/** The command-line flags of peer sharing, as given. */
export interface PeerFlags {
  peers?: string | undefined;
  "peer-listen"?: string | undefined;
  "peer-key-file"?: string | undefined;
  "peer-upload-limit"?: string | undefined;
  "peer-max-connections"?: string | undefined;
  "peer-fanout"?: string | undefined;
}

/** Where the members come from: a fixed list, or the endpoints of a Kubernetes Service. */
export type PeerMembers =
  | { kind: "static"; peers: string[] }
  | { kind: "kubernetes"; service: string | undefined };

/** Checked peer settings. */
export interface PeerSettings {
  /** This node's peer listener; undefined for a member that only asks (`ferry pull --peers`). */
  listen: { self: string; host: string; port: number } | undefined;
  members: PeerMembers;
  key: Buffer;
  uploadBytesPerSecond: number;
  maxConnections: number;
  /** Peers served one blob at once; further askers are pointed at those peers, which relay it. */
  fanOut: number;
}

/** The config file's `peers:` (src/config's PeersConfig): members as --peers takes them, key file, listen. */
export interface PeerConfigDefaults {
  readonly members?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly listen?: string | undefined;
}

/** The flags, with the config file's `peers:` filling those not given (flags win, one by one). */
export function withConfigDefaults(
  flags: PeerFlags,
  config: PeerConfigDefaults | undefined,
): PeerFlags {
  if (config === undefined) return flags;
  return {
    ...flags,
    peers: flags.peers ?? config.members,
    "peer-key-file": flags["peer-key-file"] ?? config.keyFile,
    "peer-listen": flags["peer-listen"] ?? config.listen,
  };
}

/** The usage text of the flags, for commands that take them. */
export const PEER_FLAGS_USAGE = `  --peers HOST:PORT,...   share blobs with these nodes' peer listeners (this node may be listed);
                          \`kubernetes\` (or kubernetes:SERVICE): the ready endpoints of the
                          ferry-peers headless Service, followed as they change
  --kubeconfig FILE       with --peers kubernetes outside a pod (default: $KUBECONFIG, ~/.kube/config)
  --peer-listen HOST:PORT serve this node's blobs to its peers here (an address they reach)
  --peer-key-file FILE    shared fleet key (same file on every node) that signs peer requests
  --peer-upload-limit N   cap on bytes per second sent to peers, e.g. 50MiB (default: none)
  --peer-max-connections N  peer connections accepted at once (default 64)
  --peer-fanout N         peers served one blob at once; further askers get it from them as
                          it arrives (a relay tree). Set to the node's uplink divided by the
                          rate a blob arrives at, e.g. 1 when both are equal (default 4)
`;

/** `kubernetes` or `kubernetes:SERVICE` as --peers: the service name (undefined: the default). */
function kubernetesMembers(text: string): PeerMembers | undefined {
  const m = /^kubernetes(?::([a-z0-9]([-a-z0-9]*[a-z0-9])?))?$/.exec(text.trim());
  if (m === null) {
    if (/^kubernetes:/.test(text.trim()))
      throw invalid(`--peers kubernetes:SERVICE needs a Service name, got "${text}"`);
    return undefined;
  }
  return { kind: "kubernetes", service: m[1] };
}

/**
 * Validates the flags; undefined when peer sharing is off. Misconfiguration is a clear error.
 * `clientOnly`: a member without a listener (no --peer-listen, upload limit or connection
 * limit), which asks the listed peers and serves nobody.
 */
export async function peerSettings(
  flags: PeerFlags,
  options: { clientOnly?: boolean } = {},
): Promise<PeerSettings | undefined> {
  if (options.clientOnly === true) {
    if (flags.peers === undefined && flags["peer-key-file"] === undefined) return undefined;
    if (flags.peers === undefined || flags["peer-key-file"] === undefined)
      throw invalid(
        "asking peers needs --peers and --peer-key-file together (config file: peers.members and peers.keyFile)",
      );
    return {
      listen: undefined,
      members: kubernetesMembers(flags.peers) ?? {
        kind: "static",
        peers: parsePeerList(flags.peers),
      },
      key: await loadPeerKey(flags["peer-key-file"]),
      uploadBytesPerSecond: 0,
      maxConnections: 0,
      fanOut: 0,
    };
  }
  const given = [flags.peers, flags["peer-listen"], flags["peer-key-file"]];
  const extras = [flags["peer-upload-limit"], flags["peer-max-connections"], flags["peer-fanout"]];
  if (given.every((g) => g === undefined)) {
    if (extras.some((e) => e !== undefined))
      throw invalid("--peer-upload-limit, --peer-max-connections and --peer-fanout need --peers");
    return undefined;
  }
  if (
    flags.peers === undefined ||
    flags["peer-listen"] === undefined ||
    flags["peer-key-file"] === undefined
  )
    throw invalid(
      "peer sharing needs --peers, --peer-listen and --peer-key-file together (config file: peers.members, peers.listen and peers.keyFile)",
    );
  const self = parsePeerAddress(flags["peer-listen"], "--peer-listen");
  const members = kubernetesMembers(flags.peers) ?? {
    kind: "static" as const,
    peers: parsePeerList(flags.peers),
  };
  const colon = self.lastIndexOf(":");
  const maxConnections = Number(flags["peer-max-connections"] ?? "64");
  if (!Number.isInteger(maxConnections) || maxConnections < 1)
    throw invalid("--peer-max-connections must be a positive whole number");
  const fanOut = Number(flags["peer-fanout"] ?? "4");
  if (!Number.isInteger(fanOut) || fanOut < 1)
    throw invalid("--peer-fanout must be a positive whole number");
  const uploadBytesPerSecond =
    flags["peer-upload-limit"] === undefined
      ? 0
      : parseSize(flags["peer-upload-limit"].replace(/\/s$/, ""), "--peer-upload-limit");
  return {
    listen: {
      self,
      host: self.slice(0, colon).replace(/^\[|\]$/g, ""),
      port: Number(self.slice(colon + 1)),
    },
    members,
    key: await loadPeerKey(flags["peer-key-file"]),
    uploadBytesPerSecond,
    maxConnections,
    fanOut,
  };
}

function invalid(message: string): FerryError {
  return new FerryError("FERRY_INVALID_ARGUMENT", message, { hint: "see docs/peers.md" });
}
