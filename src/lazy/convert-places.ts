import { createHash } from "node:crypto";
import { type FileHandle, open, rm } from "node:fs/promises";
import { digestOf } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import type { Descriptor } from "../oci/index.ts";
import {
  blobExists,
  putManifest,
  type RegistryClient,
  type Repository,
  uploadBlob,
} from "../registry/index.ts";
import type { Store } from "../store/index.ts";

/** Where an image is read from or written to: a registry repository, or the store under a name. */
export type ImagePlace =
  | {
      readonly kind: "registry";
      readonly repository: Repository;
      /** Tag or digest. */
      readonly reference: string;
      /** The full reference, for messages. */
      readonly name: string;
    }
  | { readonly kind: "store"; readonly name: string };

/** Receives the converted image's blobs (a file, hashed while written) and manifest. */
export interface ImageWriter {
  /** Returns whether the destination already had the blob. */
  layer(desc: Descriptor, path: string, signal?: AbortSignal): Promise<boolean>;
  blob(desc: Descriptor, bytes: Buffer, signal?: AbortSignal): Promise<boolean>;
  manifest(
    mediaType: string,
    bytes: Buffer,
    platform: Descriptor["platform"],
    signal?: AbortSignal,
  ): Promise<string>;
}

function checked(bytes: Buffer, desc: Descriptor, what: string): Buffer {
  const actual = digestOf(bytes);
  if (actual !== desc.digest || bytes.length !== desc.size)
    throw new FerryError(
      "FERRY_DIGEST_MISMATCH",
      `${what} ${desc.digest} does not match its descriptor (got ${actual}, ${bytes.length} bytes)`,
      {
        hint: "the source served different content than the manifest names; nothing was converted",
        fields: { expected: desc.digest, actual },
      },
    );
  return bytes;
}

export class RegistryImageWriter implements ImageWriter {
  readonly #registry: RegistryClient;
  readonly #place: Extract<ImagePlace, { kind: "registry" }>;

  constructor(registry: RegistryClient, place: Extract<ImagePlace, { kind: "registry" }>) {
    this.#registry = registry;
    this.#place = place;
  }

  async layer(desc: Descriptor, path: string, signal?: AbortSignal): Promise<boolean> {
    const repo = this.#place.repository;
    if (await blobExists(this.#registry, repo, desc, { signal })) return true;
    const file = await open(path, "r");
    try {
      await uploadBlob(this.#registry, repo, desc, rehashing(file, desc), { signal });
    } finally {
      await file.close();
    }
    return false;
  }

  async blob(desc: Descriptor, bytes: Buffer, signal?: AbortSignal): Promise<boolean> {
    const repo = this.#place.repository;
    if (await blobExists(this.#registry, repo, desc, { signal })) return true;
    checked(bytes, desc, "blob");
    await uploadBlob(this.#registry, repo, desc, async (s, e) => bytes.subarray(s, e), { signal });
    return false;
  }

  async manifest(
    mediaType: string,
    bytes: Buffer,
    _platform: Descriptor["platform"],
    signal?: AbortSignal,
  ): Promise<string> {
    const digest = digestOf(bytes);
    const want = this.#place.reference;
    if (want.includes(":") && want !== digest)
      throw new FerryError(
        "FERRY_INVALID_ARGUMENT",
        `the converted image is ${digest}, not the digest ${this.#place.name} names`,
        { hint: "name the destination by tag: conversion makes a new image with a new digest" },
      );
    return putManifest(this.#registry, this.#place.repository, want, mediaType, bytes, { signal });
  }
}

/**
 * Reads a local file for upload, hashing each byte as it is handed over: the
 * read that completes the blob throws, before the upload is finished, if the
 * bytes sent are not the digest the manifest will name.
 */
export function rehashing(
  file: FileHandle,
  desc: Descriptor,
): (start: number, end: number) => Promise<Buffer> {
  const hash = createHash("sha256");
  let next = 0;
  return async (start, end) => {
    if (start !== next) throw new Error(`upload read ${start} out of order (expected ${next})`);
    const buffer = Buffer.allocUnsafe(end - start);
    for (let at = 0; at < buffer.length; ) {
      const { bytesRead } = await file.read(buffer, at, buffer.length - at, start + at);
      if (bytesRead === 0)
        throw new FerryError("FERRY_STORE_IO", `converted layer ${desc.digest} is truncated`);
      at += bytesRead;
    }
    hash.update(buffer);
    next = end;
    if (end === desc.size) {
      const actual = `sha256:${hash.digest("hex")}`;
      if (actual !== desc.digest)
        throw new FerryError(
          "FERRY_DIGEST_MISMATCH",
          `converted layer ${desc.digest} changed on disk before upload (now ${actual}); nothing was published`,
          { fields: { expected: desc.digest, actual } },
        );
    }
    return buffer;
  };
}

export class StoreImageWriter implements ImageWriter {
  readonly #store: Store;
  readonly #name: string;
  /** Keeps what is written from garbage collection until the name records it. */
  readonly #lease: { add(digests: Iterable<string>): Promise<void> };

  constructor(
    store: Store,
    name: string,
    lease: { add(digests: Iterable<string>): Promise<void> },
  ) {
    this.#store = store;
    this.#name = name;
    this.#lease = lease;
  }

  async layer(desc: Descriptor, path: string, signal?: AbortSignal): Promise<boolean> {
    await this.#lease.add([desc.digest]);
    try {
      // The store hashes the file once more: it commits only what it verified itself.
      return !(await this.#store.ingestFile(desc, path, signal));
    } finally {
      await rm(path, { force: true });
    }
  }

  async blob(desc: Descriptor, bytes: Buffer): Promise<boolean> {
    await this.#lease.add([desc.digest]);
    const had = await this.#store.hasBlob(desc.digest, desc.size);
    await this.#store.writeBlob(desc.digest, bytes);
    return had;
  }

  async manifest(
    mediaType: string,
    bytes: Buffer,
    platform: Descriptor["platform"],
  ): Promise<string> {
    const digest = digestOf(bytes);
    await this.#lease.add([digest]);
    await this.#store.writeBlob(digest, bytes);
    await this.#store.recordImage(
      this.#name,
      { mediaType, digest, size: bytes.length, ...(platform ? { platform } : {}) },
      digest,
    );
    return digest;
  }
}
