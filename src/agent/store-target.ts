/**
 * ferry's own store as a warm target: present means the store records the
 * normalized reference; pulling is the pull engine's; pinning sets the pin
 * that pruning and eviction respect.
 */
import { stat } from "node:fs/promises";
import { FerryError } from "../observe/index.ts";
import {
  configPlatform,
  hostPlatform,
  type Platform,
  parseManifest,
  parsePlatform,
  platformMatches,
} from "../oci/index.ts";
import type { PullEvent, Puller } from "../pull/index.ts";
import { formatReference, type Reference, repositoryName } from "../reference/index.ts";
import type { ImagePresence, Target } from "../runtime/index.ts";
import type { ImageRecord, Store } from "../store/index.ts";
import { PullProgressTracker } from "./pull-progress.ts";
import type { ProgressPullOptions } from "./types.ts";

const PROGRESS_EVERY_MS = 250;

export interface StoreTargetOptions {
  store: Store;
  /** Pulls into `store`; its registry client brings the credentials (TargetPullOptions.credential is not used). */
  puller: Puller;
  /** The puller's registry client: it tells which mirror, if any, a pull went through. */
  registry?: MirrorAnswers;
}

/** The part of registry/'s client the store target reads (agent/ does not import registry/). */
export interface MirrorAnswers {
  answeredFrom(domain: string): string | undefined;
}

export function createStoreTarget(options: StoreTargetOptions): Target {
  return new StoreTarget(options.store, options.puller, options.registry);
}

class StoreTarget implements Target {
  readonly kind = "store" as const;
  readonly name: string;
  readonly #store: Store;
  readonly #puller: Puller;
  readonly #registry: MirrorAnswers | undefined;

  constructor(store: Store, puller: Puller, registry: MirrorAnswers | undefined) {
    this.#store = store;
    this.#puller = puller;
    this.#registry = registry;
    this.name = `store (${store.root})`;
  }

  async ping(): Promise<void> {
    try {
      if ((await stat(this.#store.root)).isDirectory()) return;
    } catch (err) {
      throw unavailable(this.#store.root, (err as { code?: string }).code ?? String(err), err);
    }
    throw unavailable(this.#store.root, "not a directory");
  }

  async status(ref: Reference, _signal?: AbortSignal, platform?: string): Promise<ImagePresence> {
    const record = await this.#store.findImage(formatReference(ref));
    if (record === undefined) return { present: false };
    return (await this.#holds(record, platform)) ? presenceOf(ref, record) : { present: false };
  }

  /**
   * Whether the name's one stored platform is the one a pull for `platform` would store: an
   * index's entry for it (the host's when absent), or a single-platform image for it (any
   * single-platform image when absent, as a pull takes it).
   */
  async #holds(record: ImageRecord, platform: string | undefined): Promise<boolean> {
    const want = platform === undefined ? undefined : parsePlatform(platform);
    if (record.descriptor.platform !== undefined)
      return platformMatches(want ?? hostPlatform(), record.descriptor.platform);
    if (want === undefined) return true;
    // Its manifest or config unreadable: not held, so the pull (which verifies) fetches it again.
    const held = await this.#configPlatform(record).catch(() => null);
    return held !== null && (held === undefined || platformMatches(want, held));
  }

  /** The platform a single-platform image's config declares (the record has none of its own). */
  async #configPlatform(record: ImageRecord): Promise<Platform | undefined> {
    const manifest = parseManifest(
      await this.#store.readBlob(record.descriptor.digest),
      record.descriptor.mediaType,
    );
    if (manifest.kind !== "image") return undefined;
    const config: unknown = JSON.parse(
      (await this.#store.readBlob(manifest.manifest.config.digest)).toString("utf8"),
    );
    return configPlatform(config);
  }

  async pull(ref: Reference, options: ProgressPullOptions = {}): Promise<ImagePresence> {
    const report = options.onProgress;
    const tracker = new PullProgressTracker(Date.now());
    let reported = 0;
    const summary = await this.#puller.pull(ref, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.platform ? { platform: parsePlatform(options.platform) } : {}),
      ...(report === undefined
        ? {}
        : {
            onEvent: (event: PullEvent) => {
              // At most a few reports a second: each one updates the agent's status.
              if (!tracker.update(event) || Date.now() - reported < PROGRESS_EVERY_MS) return;
              reported = Date.now();
              report(tracker.progress(reported));
            },
          }),
    });
    report?.({
      ...tracker.progress(Date.now()),
      downloaded: summary.bytesDownloaded,
      fromPeers: summary.bytesFromPeers ?? 0,
      ...viaMirror(this.#registry?.answeredFrom(ref.domain)),
    });
    // A single-platform image is taken whatever its platform: one for another is not a success.
    const record = await this.#store.findImage(summary.reference);
    if (
      options.platform !== undefined &&
      record !== undefined &&
      !(await this.#holds(record, options.platform))
    )
      throw new FerryError(
        "FERRY_NO_MATCHING_PLATFORM",
        `${summary.reference} is a single-platform image, not one for ${options.platform}`,
        {
          hint: "list the platform the image is built for, or push a multi-platform image with it",
          fields: { platform: options.platform },
        },
      );
    return {
      present: true,
      id: summary.manifestDigest,
      repoDigests: [`${repositoryName(ref)}@${summary.digest}`],
    };
  }

  async pin(ref: Reference): Promise<boolean> {
    return this.#store.setPinned(formatReference(ref), true);
  }

  async unpin(ref: Reference): Promise<boolean> {
    return this.#store.setPinned(formatReference(ref), false);
  }

  async close(): Promise<void> {}
}

function presenceOf(ref: Reference, record: ImageRecord): ImagePresence {
  return {
    present: true,
    id: record.descriptor.digest,
    repoDigests: [`${repositoryName(ref)}@${record.sourceDigest}`],
  };
}

function unavailable(root: string, reason: string, cause?: unknown): FerryError {
  return new FerryError(
    "FERRY_RUNTIME_UNAVAILABLE",
    `the store at ${root} is not usable (${reason})`,
    {
      hint: "check that the store's directory exists and is writable (--store DIR)",
      fields: { root },
      cause,
    },
  );
}

function viaMirror(mirror: string | undefined): { via?: string } {
  return mirror === undefined ? {} : { via: mirror };
}
