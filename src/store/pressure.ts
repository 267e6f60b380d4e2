import { statfs } from "node:fs/promises";
import { isFerryError } from "../observe/index.ts";

/** The store's disk condition, as /readyz, /status and metrics report it. */
export interface DiskCondition {
  readonly full: boolean;
  /** When the store last found its disk full (ISO time); absent while it is not. */
  readonly since?: string;
  /** The failed write's message. */
  readonly message?: string;
  /** Bytes free on the store's filesystem at the last look. */
  readonly availableBytes?: number;
}

/** Free space that counts as recovered: 1% of the filesystem, between 1 MiB and 64 MiB. */
function recoveredAt(capacity: number): number {
  return Math.min(64 << 20, Math.max(1 << 20, Math.floor(capacity / 100)));
}

/**
 * Disk pressure as the store has seen it: set when a write fails for a full disk, cleared
 * when a later write succeeds or `check` finds free space again (a server that only reads
 * recovers by itself when space returns).
 */
export class DiskPressure {
  readonly #root: string;
  #full: { since: Date; message: string } | undefined;
  #available: number | undefined;

  constructor(root: string) {
    this.#root = root;
  }

  get full(): boolean {
    return this.#full !== undefined;
  }

  /** Runs a store write, noting whether it found the disk full. */
  async track<T>(write: Promise<T>): Promise<T> {
    try {
      const value = await write;
      this.#full = undefined;
      return value;
    } catch (err) {
      this.observe(err);
      throw err;
    }
  }

  /** Notes a failure; only a full disk counts. */
  observe(err: unknown): void {
    if (!isFerryError(err, "FERRY_DISK_FULL")) return;
    this.#full = { since: this.#full?.since ?? new Date(), message: err.message };
  }

  /** The condition now; while full, first measures whether space came back. */
  async check(): Promise<DiskCondition> {
    if (this.#full !== undefined) {
      const fs = await statfs(this.#root).catch(() => undefined);
      if (fs !== undefined) {
        this.#available = fs.bavail * fs.bsize;
        if (this.#available >= recoveredAt(fs.blocks * fs.bsize)) this.#full = undefined;
      }
    }
    return this.condition();
  }

  condition(): DiskCondition {
    if (this.#full === undefined) return { full: false };
    return {
      full: true,
      since: this.#full.since.toISOString(),
      message: this.#full.message,
      ...(this.#available === undefined ? {} : { availableBytes: this.#available }),
    };
  }
}
