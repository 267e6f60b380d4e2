/**
 * The status document as the page reads it: the JSON that `/status` serves (agent) or the
 * mirror's status, both optional in every part so an older or newer server still renders.
 */

export type CellState = "present" | "pulled" | "pulling" | "missing" | "failed" | "unknown";

export interface Progress {
  /** Bytes of the image already in place (held before or fetched now). */
  readonly done: number;
  readonly total: number;
  /** Bytes fetched by this pull so far. */
  readonly downloaded?: number;
  readonly bytesPerSecond?: number;
}

export interface Cell {
  readonly state: CellState;
  readonly present?: boolean;
  readonly pinned?: boolean;
  readonly digest?: string;
  readonly lastPulled?: string;
  readonly lastChecked?: string;
  readonly seconds?: number;
  readonly lastError?: { readonly code: string; readonly message: string; readonly at?: string };
  readonly progress?: Progress;
  /** The agent's next attempt after a failure (agent/retries.ts). */
  readonly retry?: { readonly attempts: number; readonly nextAttemptAt: string };
}

export interface ImageRow {
  readonly image: string;
  readonly required?: boolean;
  readonly platform?: string;
  readonly source?: string;
  /** Per target (agent) … */
  readonly targets?: Readonly<Record<string, Cell>>;
  /** … or per node (Kubernetes mode). */
  readonly nodes?: Readonly<Record<string, Cell>>;
}

export interface ActivityEntry {
  readonly image: string;
  readonly target?: string;
  readonly node?: string;
  readonly result: "pulled" | "failed" | "present" | string;
  readonly at: string;
  readonly seconds?: number;
  readonly bytes?: number;
  readonly source?: string;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface StoreSample {
  readonly t: number;
  readonly bytes: number;
  readonly usedPercent: number;
}

export interface MirrorSample {
  readonly t: number;
  readonly hits: number;
  readonly misses: number;
  readonly bytesServed: number;
  readonly bytesUpstream: number;
}

/** A tag the mirror holds (mirror). */
export interface MirrorRepository {
  readonly image: string;
  readonly bytes: number;
  readonly lastUsed?: string;
  /** Manifest requests answered from the store since the mirror started. */
  readonly hits: number;
}

/** One manifest or blob request the mirror answered (mirror). */
export interface MirrorRequest {
  readonly at: string;
  readonly client: string;
  readonly image: string;
  readonly kind: string;
  readonly result: "hit" | "miss" | "error" | string;
  readonly status: number;
  readonly bytes: number;
}

export interface UpstreamHealth {
  readonly state: "ok" | "failing" | "unknown" | string;
  readonly lastOk?: string;
  readonly lastFailure?: string;
}

/** The peers a mirror shares blobs with (mirror, sharing on); traffic is this node's. */
export interface PeerStatus {
  readonly members: readonly { readonly peer: string; readonly live: boolean }[];
  readonly bytesFromPeers: number;
  readonly bytesFromUpstream: number;
  readonly bytesToPeers: number;
  readonly transfersAbandoned: number;
  /** Blobs in flight through this node's relay trees. */
  readonly blobs?: readonly {
    readonly digest: string;
    readonly servingTo: readonly string[];
    readonly serving: number;
    readonly receivingFrom?: string;
    readonly depth: number;
  }[];
}

export interface StatusDocument {
  readonly kind?: "agent" | "mirror" | string;
  readonly node?: string;
  readonly time?: string;
  readonly ready?: boolean;
  readonly targets?: readonly string[];
  readonly nodes?: readonly string[];
  readonly images?: readonly ImageRow[];
  readonly queue?: { readonly depth?: number };
  readonly activity?: readonly ActivityEntry[];
  readonly storeUsage?: {
    readonly highPercent?: number;
    readonly lowPercent?: number;
    readonly samples: readonly StoreSample[];
  } | null;
  readonly mirror?: {
    readonly hits: number;
    readonly misses: number;
    readonly bytesServed: number;
    readonly bytesUpstream: number;
    readonly samples?: readonly MirrorSample[];
    readonly repositories?: readonly MirrorRepository[];
    /** Newest first. */
    readonly requests?: readonly MirrorRequest[];
    readonly upstream?: UpstreamHealth;
    readonly peers?: PeerStatus;
  } | null;
}
