// The labels containerd's unpacker passes with a layer's Prepare when the pull asked for
// remote snapshots: the snapshot to commit (`containerd.io/snapshot.ref`), the image and the
// layer, either as `ctr-remote image rpull` names them or as the CRI plugin does.
import { TOC_DIGEST_ANNOTATION } from "../lazy/index.ts";

export const TARGET_LABEL = "containerd.io/snapshot.ref";

/** The two spellings of "which image and which layer", the stargz one first. */
const SOURCES = [
  {
    reference: "containerd.io/snapshot/remote/stargz.reference",
    digest: "containerd.io/snapshot/remote/stargz.digest",
  },
  {
    reference: "containerd.io/snapshot/cri.image-ref",
    digest: "containerd.io/snapshot/cri.layer-digest",
  },
] as const;

export interface RemoteRequest {
  /** The committed snapshot's name containerd will look for. */
  readonly target: string;
  readonly reference: string;
  readonly layerDigest: string;
  /** The layer's TOC digest, as the manifest annotates it (containerd passes it on). */
  readonly tocDigest: string | undefined;
}

/** The remote-snapshot request in a Prepare's labels; undefined when it is not one. */
export function remoteRequest(labels: Readonly<Record<string, string>>): RemoteRequest | undefined {
  const target = labels[TARGET_LABEL];
  if (target === undefined || target === "") return undefined;
  for (const source of SOURCES) {
    const reference = labels[source.reference];
    const layerDigest = labels[source.digest];
    if (reference && layerDigest)
      return { target, reference, layerDigest, tocDigest: labels[TOC_DIGEST_ANNOTATION] };
  }
  return undefined;
}
