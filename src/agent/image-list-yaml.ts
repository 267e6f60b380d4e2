/** The YAML form of an image list, read node by node so every problem knows its line and column. */
import type * as Yaml from "yaml";
import { TARGET_KINDS, type TargetKind } from "../runtime/index.ts";
import {
  addEntry,
  entryOf,
  HINTS,
  ITEM_KEYS,
  listInvalid,
  type Position,
  type Problem,
  TOP_KEYS,
} from "./image-list-entry.ts";
import type { ImageEntry, ImageList } from "./types.ts";

export class YamlListReader {
  readonly #yaml: typeof Yaml;
  readonly #doc: Yaml.Document;
  readonly #lines: Yaml.LineCounter;
  readonly #source: string;
  readonly #problems: Problem[] = [];

  constructor(yaml: typeof Yaml, doc: Yaml.Document, lines: Yaml.LineCounter, source: string) {
    this.#yaml = yaml;
    this.#doc = doc;
    this.#lines = lines;
    this.#source = source;
  }

  read(): ImageList {
    const yaml = this.#yaml;
    const top = this.#deref(this.#doc.contents);
    const images: ImageEntry[] = [];
    let targets: TargetKind[] | undefined;
    if (!yaml.isMap(top)) {
      this.#problem(top, undefined, "expected a mapping with an images: list", HINTS.images);
      throw listInvalid(this.#source, this.#problems);
    }
    for (const pair of top.items) {
      const key = this.#keyOf(pair.key);
      if (key === "images") this.#readImages(pair, images);
      else if (key === "targets") targets = this.#readTargets(pair);
      else this.#problem(pair.key, key, "unknown key", `known keys here: ${TOP_KEYS.join(", ")}`);
    }
    if (!top.items.some((pair) => this.#keyOf(pair.key) === "images")) {
      this.#problem(top, "images", "missing: the list of images to hold", HINTS.images);
    }
    if (this.#problems.length > 0) throw listInvalid(this.#source, this.#problems);
    return { images, targets, source: this.#source };
  }

  #readImages(pair: Yaml.Pair, images: ImageEntry[]): void {
    const list = this.#deref(pair.value);
    if (!this.#yaml.isSeq(list)) {
      this.#problem(this.#valueOrKey(pair), "images", "expected a list", HINTS.images);
      return;
    }
    const seen = new Map<string, number>();
    for (const [i, node] of list.items.entries()) {
      const item = this.#deref(node);
      const key = `images[${i}]`;
      const at = this.#at(item);
      const entry = this.#yaml.isMap(item)
        ? this.#readItem(item, key)
        : this.#readReference(item, key, undefined, true);
      if (entry !== undefined) addEntry(entry, at, key, seen, images, this.#problems);
    }
  }

  #readItem(map: Yaml.YAMLMap, key: string): ImageEntry | undefined {
    let image: unknown;
    let platform: string | undefined;
    let required = true;
    const before = this.#problems.length;
    for (const pair of map.items) {
      const name = this.#keyOf(pair.key);
      const value = this.#deref(pair.value);
      const scalar = this.#yaml.isScalar(value) ? value.value : undefined;
      const where = this.#valueOrKey(pair);
      if (name === "image") {
        image = value;
      } else if (name === "platform") {
        if (typeof scalar === "string") platform = scalar;
        else this.#problem(where, `${key}.platform`, "expected os/arch[/variant]", HINTS.platform);
      } else if (name === "required") {
        if (typeof scalar === "boolean") required = scalar;
        else this.#problem(where, `${key}.required`, "expected true or false", HINTS.required);
      } else {
        const known = `known keys here: ${ITEM_KEYS.join(", ")}`;
        this.#problem(pair.key, `${key}.${name}`, "unknown key", known);
      }
    }
    if (image === undefined) {
      this.#problem(map, `${key}.image`, "missing: the image reference", HINTS.images);
      return undefined;
    }
    const entry = this.#readReference(image, `${key}.image`, platform, required, map);
    return this.#problems.length === before ? entry : undefined;
  }

  #readReference(
    node: unknown,
    key: string,
    platform: string | undefined,
    required: boolean,
    item?: Yaml.YAMLMap,
  ): ImageEntry | undefined {
    const value = this.#yaml.isScalar(node) ? node.value : undefined;
    if (typeof value !== "string") {
      this.#problem(node, key, "expected an image reference (a string)", HINTS.images);
      return undefined;
    }
    const platformNode = item?.items.find((p) => this.#keyOf(p.key) === "platform")?.value;
    return entryOf(
      value,
      platform,
      required,
      this.#at(node),
      key,
      this.#problems,
      this.#at(platformNode),
    );
  }

  #readTargets(pair: Yaml.Pair): TargetKind[] | undefined {
    const list = this.#deref(pair.value);
    if (!this.#yaml.isSeq(list)) {
      this.#problem(this.#valueOrKey(pair), "targets", "expected a list", HINTS.targets);
      return undefined;
    }
    const kinds: TargetKind[] = [];
    for (const [i, node] of list.items.entries()) {
      const item = this.#deref(node);
      const value = this.#yaml.isScalar(item) ? item.value : undefined;
      const kind = TARGET_KINDS.find((k) => k === value);
      if (kind === undefined)
        this.#problem(
          item,
          `targets[${i}]`,
          `unknown target ${JSON.stringify(value ?? null)}`,
          HINTS.targets,
        );
      else if (!kinds.includes(kind)) kinds.push(kind);
    }
    return kinds;
  }

  #deref(node: unknown): unknown {
    return this.#yaml.isAlias(node) ? node.resolve(this.#doc) : node;
  }

  /** Where a value is wrong: the value, or its key when the value was left out. */
  #valueOrKey(pair: Yaml.Pair): unknown {
    const value = pair.value;
    const empty = value === null || (this.#yaml.isScalar(value) && value.value === null);
    return empty ? pair.key : value;
  }

  #keyOf(node: unknown): string {
    return this.#yaml.isScalar(node) ? String(node.value) : String(node);
  }

  #at(node: unknown): Position {
    const range = (node as { range?: readonly number[] | null } | null | undefined)?.range;
    return this.#lines.linePos(range?.[0] ?? 0);
  }

  #problem(node: unknown, key: string | undefined, message: string, hint: string): void {
    this.#problems.push({ at: this.#at(node), key, message, hint });
  }
}
