import { z } from "zod";
import { parseDigest } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import {
  isImageManifestMediaType,
  isIndexMediaType,
  MediaType,
  SCHEMA1_MEDIA_TYPES,
} from "./media-types.ts";

const digestString = z.string().refine(
  (value) => {
    try {
      parseDigest(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: "not a sha256 digest" },
);

export const PlatformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  "os.version": z.string().optional(),
  "os.features": z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});
export type Platform = z.infer<typeof PlatformSchema>;

export const DescriptorSchema = z.object({
  mediaType: z.string(),
  digest: digestString,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: PlatformSchema.optional(),
  artifactType: z.string().optional(),
});
export type Descriptor = z.infer<typeof DescriptorSchema>;

export const ImageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageManifest = z.infer<typeof ImageManifestSchema>;

export const ImageIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageIndex = z.infer<typeof ImageIndexSchema>;

export type ParsedManifest =
  | { kind: "index"; mediaType: string; index: ImageIndex }
  | { kind: "image"; mediaType: string; manifest: ImageManifest };

/**
 * Parses manifest bytes. The media type comes from the document when present,
 * else from the HTTP Content-Type; they must agree when both are given.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (cause) {
    throw invalid("it is not valid JSON", cause);
  }
  if (typeof json !== "object" || json === null) throw invalid("it is not a JSON object");
  const declared = (json as { mediaType?: unknown }).mediaType;
  const schemaVersion = (json as { schemaVersion?: unknown }).schemaVersion;
  const headerType = contentType?.split(";")[0]?.trim();
  if (
    schemaVersion === 1 ||
    (typeof declared === "string" && SCHEMA1_MEDIA_TYPES.includes(declared)) ||
    (headerType !== undefined && SCHEMA1_MEDIA_TYPES.includes(headerType))
  ) {
    throw new FerryError(
      "FERRY_UNSUPPORTED_MANIFEST",
      "the registry returned a Docker schema 1 manifest, which is deprecated and not supported",
      {
        hint: "re-push the image with a current client (docker, skopeo, buildah) so it gets a schema 2 or OCI manifest",
      },
    );
  }
  let mediaType = typeof declared === "string" ? declared : headerType;
  if (mediaType === undefined || mediaType === "application/json" || mediaType === "") {
    // OCI allows omitting mediaType: infer from shape.
    mediaType = Array.isArray((json as { manifests?: unknown }).manifests)
      ? MediaType.ociIndex
      : MediaType.ociManifest;
  }
  if (isIndexMediaType(mediaType)) {
    const parsed = ImageIndexSchema.safeParse(json);
    if (!parsed.success) throw invalid(zodReason(parsed.error));
    return { kind: "index", mediaType, index: parsed.data };
  }
  if (isImageManifestMediaType(mediaType)) {
    const parsed = ImageManifestSchema.safeParse(json);
    if (!parsed.success) throw invalid(zodReason(parsed.error));
    return { kind: "image", mediaType, manifest: parsed.data };
  }
  throw new FerryError(
    "FERRY_UNSUPPORTED_MANIFEST",
    `unsupported manifest media type "${mediaType}"`,
    { hint: "ferry pulls OCI and Docker schema 2 images and indexes", fields: { mediaType } },
  );
}

function zodReason(error: z.ZodError): string {
  const first = error.issues[0];
  if (first === undefined) return "it does not match the schema";
  return `${first.path.join(".") || "(root)"}: ${first.message}`;
}

function invalid(reason: string, cause?: unknown): FerryError {
  return new FerryError("FERRY_INVALID_MANIFEST", `invalid manifest: ${reason}`, {
    hint: "the registry returned a malformed manifest; check the image was pushed correctly",
    cause,
  });
}
