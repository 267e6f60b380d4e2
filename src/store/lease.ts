import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { FerryError } from "../observe/index.ts";
import { writeFileAtomic } from "./atomic.ts";
import { withIndexLock } from "./index-file.ts";
import { isProcessAlive, uniqueHex } from "../fsx/index.ts";

// A lease keeps content alive while a pull (or any other writer) is between "I need
// these digests" and "they are reachable from index.json". It is a file
// `ferry/leases/<pid>-<random>.json`; a lease whose pid no longer runs is void.
//
// Leases are written under the index lock, and garbage collection holds that lock from
// reading the leases to its last unlink. So a digest is either in a lease GC has read, or
// added after GC finished: a writer that adds a digest before checking hasBlob never sees a
// blob that GC is about to delete.

/** What a lease file holds. */
export interface LeaseRecord {
  readonly pid: number;
  /** The image name being written, if any: pruning leaves that name alone too. */
  readonly reference: string | undefined;
  readonly digests: readonly string[];
  readonly createdAt: string;
}

const LEASE_NAME = /^(\d+)-[0-9a-f]{8}\.json$/;

export function leaseDir(root: string): string {
  return join(root, "ferry", "leases");
}

export class Lease {
  readonly #root: string;
  readonly #path: string;
  readonly #reference: string | undefined;
  readonly #digests = new Set<string>();
  readonly #createdAt = new Date().toISOString();
  #released = false;

  private constructor(root: string, reference: string | undefined) {
    this.#root = root;
    this.#reference = reference;
    this.#path = join(leaseDir(root), `${process.pid}-${uniqueHex()}.json`);
  }

  /** Takes a lease on `digests` (and `reference`); returns once garbage collection will honour it. */
  static async take(
    root: string,
    reference: string | undefined,
    digests: Iterable<string>,
  ): Promise<Lease> {
    const lease = new Lease(root, reference);
    await lease.add(digests);
    return lease;
  }

  get digests(): ReadonlySet<string> {
    return this.#digests;
  }

  /** Adds digests; call it before checking for or writing any of them. */
  async add(digests: Iterable<string>): Promise<void> {
    if (this.#released) throw new FerryError("FERRY_INTERNAL", "a released lease cannot grow");
    for (const d of digests) this.#digests.add(d);
    const record: LeaseRecord = {
      pid: process.pid,
      reference: this.#reference,
      digests: [...this.#digests],
      createdAt: this.#createdAt,
    };
    // Without fsync: a lease is void after a crash anyway.
    await withIndexLock(this.#root, () =>
      writeFileAtomic(this.#path, JSON.stringify(record), { durable: false }),
    );
  }

  /** Ends the lease; do so only after what it protected is recorded in index.json (or abandoned). */
  async release(): Promise<void> {
    this.#released = true;
    await rm(this.#path, { force: true });
  }
}

/** The leases of running processes; files of dead ones are removed when `clean` is set. */
export async function readLeases(root: string, clean: boolean): Promise<LeaseRecord[]> {
  const out: LeaseRecord[] = [];
  for (const name of await readdir(leaseDir(root)).catch(() => [] as string[])) {
    const m = LEASE_NAME.exec(name);
    if (m === null) continue;
    const path = join(leaseDir(root), name);
    if (!isProcessAlive(Number(m[1]))) {
      if (clean) await rm(path, { force: true });
      continue;
    }
    const text = await readFile(path, "utf8").catch(() => undefined);
    if (text === undefined) continue; // released meanwhile
    out.push(parseLease(text, Number(m[1])));
  }
  return out;
}

function parseLease(text: string, pid: number): LeaseRecord {
  let v: Partial<Record<keyof LeaseRecord, unknown>> = {};
  try {
    v = JSON.parse(text) as typeof v;
  } catch {
    // Written by rename, so never torn; an unreadable lease protects nothing it could name.
  }
  return {
    pid,
    reference: typeof v.reference === "string" ? v.reference : undefined,
    digests: Array.isArray(v.digests)
      ? v.digests.filter((d): d is string => typeof d === "string")
      : [],
    createdAt: typeof v.createdAt === "string" ? v.createdAt : "",
  };
}
