import { Annotation } from "../oci/index.ts";

/** Set by containerd and Docker 25+ on index.json entries: the image's full reference. */
export const CONTAINERD_IMAGE_NAME = "io.containerd.image.name";

/** The name an index.json entry gives its image: containerd's annotation, else `ref.name`. */
export function layoutName(annotations: Record<string, string> | undefined): string | undefined {
  return annotations?.[CONTAINERD_IMAGE_NAME] ?? annotations?.[Annotation.refName];
}
