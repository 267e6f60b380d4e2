// The Distribution API's paths, spelled once.

/** `/v2/<name>/blobs/<digest>`: where a repository's blob is read (GET, HEAD). */
export function blobPath(repository: string, digest: string): string {
  return `/v2/${repository}/blobs/${digest}`;
}

/** `/v2/<name>/manifests/<tag or digest>`. */
export function manifestPath(repository: string, reference: string): string {
  return `/v2/${repository}/manifests/${reference}`;
}
