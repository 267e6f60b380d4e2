import { hostPlatform, type Platform, resolveImage } from "../oci/index.ts";
import { DEFAULT_DOMAIN, formatReference, type Reference } from "../reference/index.ts";
import { DEFAULT_RETRY, RegistryClient, RegistrySource } from "../registry/index.ts";

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
  const endpoint = mirrorUrl.replace(/\/+$/, "");
  const namespace = ref.domain === DEFAULT_DOMAIN ? {} : { namespace: ref.domain };
  // The mirror stands in for the image's registry; a failure is the warm's (the agent retries it).
  const client = new RegistryClient({
    settings: (host) => (host === ref.domain ? { endpoint, ...namespace } : undefined),
    retry: { ...DEFAULT_RETRY, maxAttempts: 1 },
  });
  try {
    const repo = { domain: ref.domain, path: ref.path };
    const { top, manifest } = await resolveImage(
      new RegistrySource(client, repo),
      ref.digest ?? ref.tag ?? "latest",
      options.platform ?? hostPlatform(),
      { signal: options.signal, name: formatReference(ref) },
    );
    const blobs = [manifest.config, ...manifest.layers];
    let bytes = 0;
    await Promise.all(
      blobs.map(async (d) => {
        // Read and dropped, not hashed: the mirror verifies what it stores.
        const res = await client.openBlob(
          repo,
          d.digest,
          options.signal ? { signal: options.signal } : {},
        );
        for await (const part of res.body) bytes += (part as Buffer).length;
      }),
    );
    return {
      reference: formatReference(ref),
      digest: top.digest,
      blobs: blobs.length,
      bytes,
      seconds: Math.round(performance.now() - started) / 1000,
    };
  } finally {
    await client.close();
  }
}
