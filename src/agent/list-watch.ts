/**
 * Watches the image list file and calls back when its content changes. Editors and config
 * management replace files by rename, which a watch on the file itself loses, so the
 * directory is watched (prompt) and the path is also polled (a fallback where inotify
 * events do not arrive, e.g. some network and container filesystems). Equal content, however
 * often touched, calls back once.
 */
import { createHash } from "node:crypto";
import { type FSWatcher, unwatchFile, watch, watchFile } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";

export interface ListWatch {
  stop(): void;
}

export interface ListWatchOptions {
  /** Stat polling interval (default 2 s). */
  readonly pollMs?: number;
  /** Quiet time after an event before the file is read (default 150 ms). */
  readonly settleMs?: number;
}

export async function contentHash(path: string): Promise<string | undefined> {
  try {
    return createHash("sha256")
      .update(await readFile(path))
      .digest("hex");
  } catch {
    return undefined; // missing for a moment while being replaced
  }
}

export function watchList(
  path: string,
  initialHash: string | undefined,
  onChange: () => void,
  options: ListWatchOptions = {},
): ListWatch {
  let last = initialHash;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = async () => {
    const hash = await contentHash(path);
    if (stopped || hash === undefined || hash === last) return;
    last = hash;
    onChange();
  };
  const poke = () => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void check(), options.settleMs ?? 150);
  };
  const name = basename(path);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file.toString() === name) poke();
    });
    watcher.on("error", () => watcher?.close());
  } catch {
    watcher = undefined; // polling alone still works
  }
  watchFile(path, { interval: options.pollMs ?? 2000, persistent: false }, poke);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      watcher?.close();
      unwatchFile(path, poke);
    },
  };
}
