/**
 * Pinning for containerd. The CRI has no pin call; containerd 1.7+ reports an image as CRI
 * `pinned` (which kubelet's image GC spares) when one of its names carries the label
 * `io.cri-containerd.pinned=pinned`. ferry sets that label through containerd's own image
 * service (Images/Update, namespace k8s.io) on every name the CRI lists for the image.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { FerryError } from "../observe/index.ts";
import { formatReference, type Reference } from "../reference/index.ts";
import type { CriImage, RuntimeVersion } from "./cri-messages.ts";

export const PINNED_LABEL = "io.cri-containerd.pinned";
export const PINNED_VALUE = "pinned";
/** The namespace containerd's CRI plugin keeps kubelet's images in. */
export const CRI_NAMESPACE = "k8s.io";
/** How long the CRI may take to notice the label (it reads containerd's image events). */
const CONFIRM_MS = 2000;
const CONFIRM_POLL_MS = 25;

export type LabelOutcome = "labelled" | "absent" | "unsupported";

/** What pinning needs from the target. */
export interface PinOperations {
  image(ref: Reference, signal?: AbortSignal): Promise<CriImage | undefined>;
  version(signal?: AbortSignal): Promise<RuntimeVersion>;
  /** Sets one label on one containerd image of the k8s.io namespace (value undefined: removes it). */
  label(
    name: string,
    key: string,
    value: string | undefined,
    signal?: AbortSignal,
  ): Promise<LabelOutcome>;
}

export async function pinImage(
  ops: PinOperations,
  ref: Reference,
  signal?: AbortSignal,
): Promise<boolean> {
  const image = await ops.image(ref, signal);
  if (image === undefined) {
    throw new FerryError(
      "FERRY_IMAGE_NOT_FOUND",
      `cannot pin ${formatReference(ref)}: containerd does not have it`,
      {
        hint: "pull the image into the runtime first",
        fields: { reference: formatReference(ref) },
      },
    );
  }
  if (image.pinned) return true;
  // The CRI keeps one containerd image per name (tag, digest, id): label each it knows.
  const names = [...new Set([...image.repoTags, ...image.repoDigests, image.id])];
  let labelled = 0;
  for (const name of names) {
    const outcome = await ops.label(name, PINNED_LABEL, PINNED_VALUE, signal);
    if (outcome === "unsupported") return false;
    if (outcome === "labelled") labelled++;
  }
  if (labelled === 0 || !honoursPinLabel(await ops.version(signal))) return false;
  const deadline = Date.now() + CONFIRM_MS;
  while (Date.now() < deadline) {
    if ((await ops.image(ref, signal))?.pinned) return true;
    try {
      await sleep(CONFIRM_POLL_MS, undefined, signal === undefined ? {} : { signal });
    } catch (err) {
      throw new FerryError("FERRY_INTERRUPTED", "cancelled while pinning", { cause: err });
    }
  }
  return false;
}

/** containerd reads the label from 1.7 on; other CRI runtimes are asked (the poll decides). */
export function honoursPinLabel(version: RuntimeVersion): boolean {
  if (version.runtimeName !== "containerd") return true;
  const m = /^v?(\d+)\.(\d+)/.exec(version.runtimeVersion);
  if (m === null) return true;
  const major = Number(m[1]);
  return major > 1 || (major === 1 && Number(m[2]) >= 7);
}

/** Removes the pin label from every name of the image; false when the runtime does not have it. */
export async function unpinImage(
  ops: PinOperations,
  ref: Reference,
  signal?: AbortSignal,
): Promise<boolean> {
  const image = await ops.image(ref, signal);
  if (image === undefined) return false;
  let removed = 0;
  for (const name of new Set([...image.repoTags, ...image.repoDigests, image.id])) {
    const outcome = await ops.label(name, PINNED_LABEL, undefined, signal);
    if (outcome === "unsupported") return false;
    if (outcome === "labelled") removed++;
  }
  return removed > 0;
}
