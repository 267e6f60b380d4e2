/** Media types ferry understands. Data only; no I/O. */
export const MediaType = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociLayerNondistributableGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerLayerForeignGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

export const INDEX_MEDIA_TYPES: readonly string[] = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
];
export const IMAGE_MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.ociManifest,
  MediaType.dockerManifest,
];
export const SCHEMA1_MEDIA_TYPES: readonly string[] = [
  MediaType.dockerSchema1,
  MediaType.dockerSchema1Signed,
];

/** The Accept header for manifest requests, most preferred first. Schema 1 is deliberately absent. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.dockerManifest,
];

export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_MEDIA_TYPES.includes(mediaType);
}

export function isImageManifestMediaType(mediaType: string): boolean {
  return IMAGE_MANIFEST_MEDIA_TYPES.includes(mediaType);
}

export function isManifestMediaType(mediaType: string): boolean {
  return isIndexMediaType(mediaType) || isImageManifestMediaType(mediaType);
}

/** Well-known annotation keys. */
export const Annotation = {
  refName: "org.opencontainers.image.ref.name",
} as const;
