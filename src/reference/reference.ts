/** A normalized image reference: where an image lives and which version. */
export interface Reference {
  /** Registry host with optional port, e.g. "docker.io", "localhost:5000", "[::1]:5000". */
  readonly domain: string;
  /** Repository path within the registry, e.g. "library/postgres". */
  readonly path: string;
  /** Tag; "latest" when the text named neither tag nor digest. */
  readonly tag: string | undefined;
  /** Digest "algorithm:hex", when pinned. */
  readonly digest: string | undefined;
}

/** A repository without a version: what `/v2/<name>/` routes on. */
export interface Repository {
  readonly domain: string;
  readonly path: string;
}
