/**
 * The node's image list from its sources (the agent's file, ConfigMaps, PrePulls matching the
 * node), merged by reference, and the list file the agent watches. Pure apart from the write.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { type ImageEntry, parseImageList } from "../agent/index.ts";
import { writeFileAtomic } from "../fsx/index.ts";
import { formatReference, parseReference } from "../reference/index.ts";
import { IMAGE_LIST_KEY, WORKLOAD_PREPULL_LABEL } from "./names.ts";
import type { AssignedImage } from "./node-images.ts";
import { type PrePull, prepullKey } from "./prepull.ts";
import { matchesNodeSelector } from "./selector.ts";

export interface WantedImage {
  entry: ImageEntry;
  /** the PrePulls (namespace/name) naming it */
  prepulls: Set<string>;
}

export interface ImageSources {
  readonly base: readonly ImageEntry[];
  readonly configMaps: readonly V1ConfigMap[];
  /** already matched to the node (matchingPrePulls) */
  readonly prepulls: readonly PrePull[];
  /** the node's NodeImages spec (the controller's matching) */
  readonly assigned?: readonly AssignedImage[];
  /**
   * A source that cannot be read: skipped; `key` identifies the problem for de-duplication.
   * `blocking` when the source might name required images (a ConfigMap, whose entries default
   * to required, or a required PrePull): the startup taint must not go while it is unreadable.
   */
  readonly problem: (
    key: string,
    entry: Record<string, unknown> & { msg: string },
    blocking: boolean,
  ) => void;
}

/** The PrePulls for a node with these labels (not the workload controller's), in a stable order. */
export function matchingPrePulls(
  prepulls: readonly PrePull[],
  labels: Readonly<Record<string, string>>,
): PrePull[] {
  return prepulls
    .filter((p) => p.metadata?.labels?.[WORKLOAD_PREPULL_LABEL] === undefined)
    .filter((p) => matchesNodeSelector(p.spec?.nodeSelector, labels))
    .sort((a, b) => prepullKey(a).localeCompare(prepullKey(b)));
}

/** Every image the node should hold, by reference; required if any source requires it. */
export function collectImages(sources: ImageSources): Map<string, WantedImage> {
  const wanted = new Map<string, WantedImage>();
  const add = (entry: ImageEntry, prepull?: string) => {
    const image = formatReference(entry.ref);
    const had = wanted.get(image);
    if (had === undefined)
      wanted.set(image, { entry, prepulls: new Set(prepull ? [prepull] : []) });
    else {
      if (entry.required && !had.entry.required) had.entry = { ...had.entry, required: true };
      if (prepull) had.prepulls.add(prepull);
    }
  };
  for (const entry of sources.base) add(entry);
  const configMaps = [...sources.configMaps].sort((a, b) =>
    (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""),
  );
  for (const cm of configMaps) {
    const text = cm.data?.[IMAGE_LIST_KEY];
    const source = `configmap/${cm.metadata?.namespace}/${cm.metadata?.name}`;
    if (text === undefined) {
      sources.problem(
        source,
        { msg: `ConfigMap has no ${IMAGE_LIST_KEY} key`, configMap: source },
        true,
      );
      continue;
    }
    try {
      for (const entry of parseImageList(source, text).images) add(entry);
    } catch (error) {
      sources.problem(
        `${source}@${cm.metadata?.resourceVersion}`,
        {
          msg: "image list in ConfigMap not valid: skipped",
          configMap: source,
          error: error instanceof Error ? error.message : String(error),
        },
        true,
      );
    }
  }
  for (const p of sources.prepulls) {
    for (const text of p.spec?.images ?? []) {
      try {
        const ref = parseReference(text);
        const required = p.spec?.required === true;
        add({ text, ref, platform: p.spec?.platform, required }, prepullKey(p));
      } catch (error) {
        sources.problem(
          `${prepullKey(p)}:${text}`,
          {
            msg: "PrePull names an invalid reference",
            prepull: prepullKey(p),
            image: text,
            error: String(error),
          },
          p.spec?.required === true,
        );
      }
    }
  }
  for (const a of sources.assigned ?? []) {
    try {
      const entry = { text: a.image, ref: parseReference(a.image), platform: a.platform };
      for (const prepull of a.prepulls) add({ ...entry, required: a.required }, prepull);
      if (a.prepulls.length === 0) add({ ...entry, required: a.required });
    } catch (error) {
      sources.problem(
        `${a.prepulls.join(",")}:${a.image}`,
        {
          msg: "PrePull names an invalid reference",
          prepull: a.prepulls.join(", "),
          image: a.image,
          error: String(error),
        },
        a.required,
      );
    }
  }
  return wanted;
}

/** The list file's text (YAML; JSON is a subset). */
export function listText(wanted: ReadonlyMap<string, WantedImage>, from: string): string {
  const images = [...wanted.values()].map(({ entry }) => ({
    image: formatReference(entry.ref),
    required: entry.required,
    ...(entry.platform === undefined ? {} : { platform: entry.platform }),
  }));
  return `# written by ferry agent --kubernetes from ${from}, ConfigMaps and PrePulls\n${JSON.stringify({ images }, null, 2)}\n`;
}

/** temp file, fsync, rename, directory fsync: the agent never reads half a list */
export async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, text);
}
