/**
 * The fleet view of the agent's /status in Kubernetes mode: images × nodes, built from what
 * the cluster already records (each agent's entry in `PrePull.status.nodes[<node>]`), with
 * this node's column taken live from its own state. Pure: the node agent hands in the PrePulls
 * it watches and a function giving this node's state of an image.
 */
import { formatReference, parseReference } from "../reference/index.ts";
import { type NodeImageStatus, type PrePull, prepullKey } from "./prepull.ts";

/** One image on one node, in the status page's cell shape. */
export interface FleetCell {
  readonly state: NodeImageStatus["state"];
  readonly digest?: string;
  /** As the node's agent wrote it, e.g. "FERRY_REGISTRY_NOT_FOUND: …". */
  readonly reason?: string;
  /** The reason split for the page: code (the part before ": ") and message. */
  readonly lastError?: { readonly code: string; readonly message: string };
  /** When that node's agent last wrote its entry (absent for this node: live). */
  readonly updated?: string;
}

export interface FleetRow {
  readonly image: string;
  readonly required: boolean;
  /** namespace/name of the PrePulls listing it. */
  readonly prepulls: readonly string[];
  readonly nodes: Readonly<Record<string, FleetCell>>;
}

export interface FleetView {
  /** This node first, then the others by name. */
  readonly nodes: readonly string[];
  readonly images: readonly FleetRow[];
}

export interface FleetInput {
  readonly node: string;
  readonly prepulls: readonly PrePull[];
  /** namespace/name of the PrePulls that select this node. */
  readonly matching: ReadonlySet<string>;
  /** More images this node keeps (its merged list): shown with this node's live state. */
  readonly listed?: readonly string[];
  /** This node's state of an image, live. */
  readonly live: (image: string) => NodeImageStatus;
}

/** The canonical spelling of an image (as the agent's own rows use), or the text as given. */
export function imageKey(text: string): string {
  try {
    return formatReference(parseReference(text));
  } catch {
    return text;
  }
}

export function fleetView(input: FleetInput): FleetView {
  const rows = new Map<
    string,
    { required: boolean; prepulls: Set<string>; nodes: Map<string, FleetCell> }
  >();
  const row = (image: string) => {
    const key = imageKey(image);
    let r = rows.get(key);
    if (r === undefined) {
      r = { required: false, prepulls: new Set(), nodes: new Map() };
      rows.set(key, r);
    }
    return r;
  };
  const others = new Set<string>();
  for (const p of input.prepulls) {
    const key = prepullKey(p);
    const images = p.spec?.images ?? [];
    for (const image of images) {
      const r = row(image);
      r.prepulls.add(key);
      if (p.spec?.required === true) r.required = true;
    }
    for (const [node, status] of Object.entries(p.status?.nodes ?? {})) {
      if (node === input.node) continue; // this node's column is live, below
      others.add(node);
      for (const entry of status.images ?? []) {
        const r = row(entry.image);
        const cell = cellOf(entry, status.updated);
        const before = r.nodes.get(node);
        // Two PrePulls listing the same image: the newer entry of that node wins.
        if (before === undefined || (before.updated ?? "") < (cell.updated ?? ""))
          r.nodes.set(node, cell);
      }
    }
    if (input.matching.has(key))
      for (const image of images) row(image).nodes.set(input.node, cellOf(input.live(image)));
  }
  for (const image of input.listed ?? []) {
    const r = row(image);
    if (!r.nodes.has(input.node)) r.nodes.set(input.node, cellOf(input.live(image)));
  }
  const nodes = [input.node, ...[...others].sort()];
  return {
    nodes,
    images: [...rows].map(([image, r]) => ({
      image,
      required: r.required,
      prepulls: [...r.prepulls].sort(),
      nodes: Object.fromEntries(
        nodes.flatMap((n): [string, FleetCell][] => {
          const cell = r.nodes.get(n);
          return cell === undefined ? [] : [[n, cell]];
        }),
      ),
    })),
  };
}

/**
 * The agent's status document with the fleet merged in: every row gets `nodes`, images only
 * PrePulls list get rows of their own (no targets: this agent does not keep them), and the
 * document gets `nodes` (the page's columns) and `kubernetes` (node, taint, conditions).
 */
export function withFleet(
  doc: Record<string, unknown>,
  fleet: FleetView,
  kubernetes: Record<string, unknown>,
): Record<string, unknown> {
  const byImage = new Map(fleet.images.map((r) => [r.image, r]));
  const own = Array.isArray(doc["images"]) ? (doc["images"] as Record<string, unknown>[]) : [];
  const seen = new Set<string>();
  const images: Record<string, unknown>[] = own.map((row) => {
    const image = String(row["image"]);
    seen.add(image);
    const f = byImage.get(image);
    return {
      ...row,
      ...(f === undefined ? { nodes: {} } : { nodes: f.nodes, prepulls: f.prepulls }),
      required: row["required"] === true || f?.required === true,
    };
  });
  for (const f of fleet.images)
    if (!seen.has(f.image))
      images.push({
        image: f.image,
        required: f.required,
        source: "prepull",
        prepulls: f.prepulls,
        targets: {},
        nodes: f.nodes,
      });
  return { ...doc, nodes: fleet.nodes, images, kubernetes };
}

function cellOf(entry: NodeImageStatus, updated?: string): FleetCell {
  const reason = entry.reason;
  const split = reason === undefined ? undefined : /^([A-Za-z][\w.]*): ([\s\S]*)$/.exec(reason);
  return {
    state: entry.state,
    ...(entry.digest === undefined ? {} : { digest: entry.digest }),
    ...(reason === undefined
      ? {}
      : {
          reason,
          lastError:
            split === null || split === undefined
              ? { code: entry.state === "failed" ? "PullFailed" : "Reason", message: reason }
              : { code: split[1] as string, message: split[2] as string },
        }),
    ...(updated === undefined ? {} : { updated }),
  };
}
