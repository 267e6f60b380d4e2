/**
 * The node's merged image list: the agent's file, the image-list ConfigMaps and the PrePulls
 * matching the node, written atomically to the list file the agent watches. Sources that cannot
 * be read are kept as reasons (fail closed: the startup taint stays while there is any).
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { type ImageEntry, loadImageList, watchList } from "../agent/index.ts";
import { collectImages, listText, type WantedImage, writeAtomic } from "./image-sources.ts";
import type { NodeConditions } from "./node-conditions.ts";
import type { AssignedImage } from "./node-images.ts";
import type { PrePull } from "./prepull.ts";

export interface NodeListsOptions {
  readonly listFile: string;
  /** The agent's file list, merged in (optional). */
  readonly baseListFile?: string | undefined;
  readonly conditions: NodeConditions;
  readonly warnOnce: (key: string, entry: Record<string, unknown> & { msg: string }) => void;
  readonly log: (entry: Record<string, unknown>) => void;
}

export interface ListSources {
  readonly configMaps: readonly V1ConfigMap[];
  /** already matched to the node */
  readonly prepulls: readonly PrePull[];
  /** the node's NodeImages spec */
  readonly assigned: readonly AssignedImage[];
}

export class NodeLists {
  readonly #o: NodeListsOptions;
  #baseEntries: readonly ImageEntry[] = [];
  #baseError: string | undefined;
  #baseWatch: { stop(): void } | undefined;
  #wanted = new Map<string, WantedImage>();
  /** Sources that might name required images and cannot be read (source: why); fail closed. */
  #unreadable = new Map<string, string>();
  #listText = "";
  #rendering: Promise<void> = Promise.resolve();

  constructor(options: NodeListsOptions) {
    this.#o = options;
  }

  /** Every image the node should hold, by reference. */
  get wanted(): ReadonlyMap<string, WantedImage> {
    return this.#wanted;
  }

  async loadBase(): Promise<void> {
    if (this.#o.baseListFile === undefined) return;
    try {
      this.#baseEntries = (await loadImageList(this.#o.baseListFile)).images;
      this.#baseError = undefined;
    } catch (error) {
      this.#baseError = error instanceof Error ? error.message : String(error);
      this.#o.log({
        level: "warn",
        msg: "image list not read: keeping the previous one",
        error: this.#baseError,
      });
    }
  }

  /** Reloads the agent's file when it changes, then calls `changed`. */
  watchBase(changed: () => void): void {
    if (this.#o.baseListFile === undefined) return;
    this.#baseWatch = watchList(this.#o.baseListFile, undefined, () => {
      void this.loadBase().then(changed);
    });
  }

  async stop(): Promise<void> {
    this.#baseWatch?.stop();
    await this.#rendering;
  }

  unreadableReasons(): string[] {
    return [...this.#unreadable].map(([source, why]) => `${source}: ${why}`);
  }

  /** Writes the merged list (atomically) when it changed; the agent's list watch picks it up. */
  render(sources: () => ListSources): Promise<void> {
    const next = this.#rendering.then(() => this.#renderNow(sources()));
    this.#rendering = next.catch(() => {});
    return next;
  }

  async #renderNow(sources: ListSources): Promise<void> {
    const unreadable = new Map<string, string>();
    if (this.#baseError !== undefined)
      unreadable.set(`file ${this.#o.baseListFile}`, `list file not read: ${this.#baseError}`);
    this.#wanted = collectImages({
      base: this.#baseEntries,
      configMaps: sources.configMaps,
      prepulls: sources.prepulls,
      assigned: sources.assigned,
      problem: (key, entry, blocking) => {
        this.#o.warnOnce(key, entry);
        if (!blocking) return;
        const source = String(entry["configMap"] ?? entry["prepull"] ?? key);
        const error = entry["error"] === undefined ? "" : `: ${String(entry["error"])}`;
        unreadable.set(source, `${entry.msg}${error}`);
      },
    });
    this.#unreadable = unreadable;
    this.#setUnreadableCondition();
    const text = listText(this.#wanted, this.#o.baseListFile ?? "no file");
    if (text === this.#listText) return;
    await writeAtomic(this.#o.listFile, text);
    this.#listText = text;
    const all = [...this.#wanted.values()];
    this.#o.log({
      level: "info",
      msg: "kubernetes image list written",
      images: all.length,
      required: all.filter((w) => w.entry.required).length,
    });
  }

  #setUnreadableCondition(): void {
    if (this.#unreadable.size === 0) {
      this.#o.conditions.delete("ImageListsReadable");
      return;
    }
    this.#o.conditions.set("ImageListsReadable", {
      type: "ImageListsReadable",
      status: "False",
      reason: "ImageListUnreadable",
      message: this.unreadableReasons().join("; "),
    });
  }
}
