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
}

/** Checked peer settings. */
export interface PeerSettings {
  self: string;
  host: string;
  port: number;
  peers: string[];
  key: Buffer;
  uploadBytesPerSecond: number;
  maxConnections: number;
}

/** The usage text of the flags, for commands that take them. */
export const PEER_FLAGS_USAGE = `  --peers HOST:PORT,...   share blobs with these nodes' peer listeners (this node may be listed)
  --peer-listen HOST:PORT serve this node's blobs to its peers here (an address they reach)
  --peer-key-file FILE    shared fleet key (same file on every node) that signs peer requests
  --peer-upload-limit N   cap on bytes per second sent to peers, e.g. 50MiB (default: none)
  --peer-max-connections N  peer connections accepted at once (default 64)
`;

/** Validates the flags; undefined when peer sharing is off. Misconfiguration is a clear error. */
export async function peerSettings(flags: PeerFlags): Promise<PeerSettings | undefined> {
  const given = [flags.peers, flags["peer-listen"], flags["peer-key-file"]];
  const extras = [flags["peer-upload-limit"], flags["peer-max-connections"]];
  if (given.every((g) => g === undefined)) {
    if (extras.some((e) => e !== undefined))
      throw invalid("--peer-upload-limit and --peer-max-connections need --peers");
    return undefined;
  }
  if (
    flags.peers === undefined ||
    flags["peer-listen"] === undefined ||
    flags["peer-key-file"] === undefined
  )
    throw invalid("peer sharing needs --peers, --peer-listen and --peer-key-file together");
  const self = parsePeerAddress(flags["peer-listen"], "--peer-listen");
  const peers = parsePeerList(flags.peers);
  const colon = self.lastIndexOf(":");
  const maxConnections = Number(flags["peer-max-connections"] ?? "64");
  if (!Number.isInteger(maxConnections) || maxConnections < 1)
    throw invalid("--peer-max-connections must be a positive whole number");
  const uploadBytesPerSecond =
    flags["peer-upload-limit"] === undefined
      ? 0
      : parseSize(flags["peer-upload-limit"].replace(/\/s$/, ""), "--peer-upload-limit");
  return {
    self,
    host: self.slice(0, colon).replace(/^\[|\]$/g, ""),
    port: Number(self.slice(colon + 1)),
    peers,
    key: await loadPeerKey(flags["peer-key-file"]),
    uploadBytesPerSecond,
    maxConnections,
  };
}

function invalid(message: string): FerryError {
  return new FerryError("FERRY_INVALID_ARGUMENT", message, { hint: "see docs/peers.md" });
}
