import { FerryError } from "../observe/index.ts";
import {
  type Descriptor,
  hostPlatform,
  MANIFEST_ACCEPT,
  type Platform,
  parseManifest,
  selectPlatform,
} from "../oci/index.ts";
import { DEFAULT_DOMAIN, formatReference, type Reference } from "../reference/index.ts";
import { errorFromResponse, readBlob, readBytes, send } from "../registry/index.ts";

export interface WarmResult {
  reference: string;
  digest: string;
  blobs: number;
  bytes: number;
  seconds: number;
}

/**
 * Fills a mirror ahead of need by pulling an image through it, exactly as a
 * client would (no `?ns=` for Docker Hub names, `?ns=REGISTRY` otherwise):
 * the manifest, then config and layers, bodies read and dropped.
 */
export async function warmThroughMirror(
  mirrorUrl: string,
  ref: Reference,
  options: { platform?: Platform; signal?: AbortSignal } = {},
): Promise<WarmResult> {
  const started = performance.now();
  const base = mirrorUrl.replace(/\/+$/, "");
  const ns = ref.domain === DEFAULT_DOMAIN ? "" : `?ns=${encodeURIComponent(ref.domain)}`;
  const url = (kind: string, id: string) => `${base}/v2/${ref.path}/${kind}/${id}${ns}`;
  const getManifest = async (id: string) => {
    const res = await send({
      method: "GET",
      url: url("manifests", id),
      headers: { accept: MANIFEST_ACCEPT.join(", ") },
      signal: options.signal,
    });
    if (res.status !== 200)
      throw await errorFromResponse(res, {
        host: new URL(base).host,
        repository: ref.path,
        reference: id,
        what: "manifest",
      });
    const bytes = await readBytes(res, 4 * 1024 * 1024);
    return {
      bytes,
      mediaType: String(res.headers["content-type"] ?? ""),
      digest: String(res.headers["docker-content-digest"] ?? ""),
    };
  };
  const top = await getManifest(ref.digest ?? ref.tag ?? "latest");
  let parsed = parseManifest(top.bytes, top.mediaType);
  if (parsed.kind === "index") {
    const chosen = selectPlatform(parsed.index.manifests, options.platform ?? hostPlatform());
    const child = await getManifest(chosen.digest);
    parsed = parseManifest(child.bytes, chosen.mediaType);
  }
  if (parsed.kind !== "image")
    throw new FerryError("FERRY_UNSUPPORTED_MANIFEST", `${formatReference(ref)}: nested index`);
  const blobs: Descriptor[] = [parsed.manifest.config, ...parsed.manifest.layers];
  let bytes = 0;
  await Promise.all(
    blobs.map(async (d) => {
      const result = await readBlob(
        {
          url: url("blobs", d.digest),
          headers: {},
          ...(options.signal ? { signal: options.signal } : {}),
        },
        (head) => head.status === 200,
        () => undefined,
      );
      if (result.head.status !== 200) {
        throw new FerryError(
          "FERRY_REGISTRY_ERROR",
          `mirror ${base} answered ${result.head.status} for blob ${d.digest} of ${formatReference(ref)}`,
          {
            fields: { body: result.errorBody },
          },
        );
      }
      bytes += result.bodyBytes;
    }),
  );
  return {
    reference: formatReference(ref),
    digest: top.digest,
    blobs: blobs.length,
    bytes,
    seconds: Math.round(performance.now() - started) / 1000,
  };
}
