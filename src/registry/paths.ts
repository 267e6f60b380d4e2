// The Distribution API's paths, spelled once.

/** `/v2/`: the API's root, which a client GETs to learn how an endpoint authenticates. */
export const API_ROOT = "/v2/";

/** `/v2/<name>/blobs/<digest>`: where a repository's blob is read (GET, HEAD). */
export function blobPath(repository: string, digest: string): string {
  return `${API_ROOT}${repository}/blobs/${digest}`;
}

/** `/v2/<name>/blobs/uploads/`: where an upload session starts, or a blob is mounted from another repository (POST). */
export function uploadPath(repository: string): string {
  return `${API_ROOT}${repository}/blobs/uploads/`;
}

/** `/v2/<name>/manifests/<tag or digest>`. */
export function manifestPath(repository: string, reference: string): string {
  return `${API_ROOT}${repository}/manifests/${reference}`;
}

/** `/v2/<name>/tags/list`. */
export function tagListPath(repository: string): string {
  return `${API_ROOT}${repository}/tags/list`;
}
