import { type ErrorCode, FerryError } from "../observe/index.ts";
import { header } from "./headers.ts";
import type { HttpResponse } from "./transport.ts";

/** What was being asked for when the registry said no; used to word the message. */
export interface RequestContext {
  host: string;
  repository: string;
  /** Tag or digest, for manifest requests. */
  reference?: string;
  digest?: string;
  what: "manifest" | "blob" | "tags" | "ping" | "token";
}

/** The hint of an answer no registry following the Distribution API gives. */
export const PROTOCOL_HINT =
  "the registry answered something the Distribution API does not allow; check the registry address, or report it to the registry's operator";

interface RegistryErrorBody {
  code?: string;
  message?: string;
}

/** The distribution spec's error codes, as data: code → ferry code. */
const CODE_TABLE: Record<string, ErrorCode> = {
  NAME_UNKNOWN: "FERRY_NAME_UNKNOWN",
  MANIFEST_UNKNOWN: "FERRY_MANIFEST_UNKNOWN",
  BLOB_UNKNOWN: "FERRY_BLOB_UNKNOWN",
  UNAUTHORIZED: "FERRY_AUTH_REQUIRED",
  DENIED: "FERRY_DENIED",
  TOOMANYREQUESTS: "FERRY_TOO_MANY_REQUESTS",
  UNSUPPORTED: "FERRY_REGISTRY_ERROR",
  NAME_INVALID: "FERRY_INVALID_REFERENCE",
  TAG_INVALID: "FERRY_INVALID_REFERENCE",
  DIGEST_INVALID: "FERRY_INVALID_DIGEST",
};

export function parseErrorBody(text: string): RegistryErrorBody[] {
  try {
    const json = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(json.errors)) {
      return json.errors.filter((e): e is RegistryErrorBody => typeof e === "object" && e !== null);
    }
  } catch {
    // not JSON: fall through to status-based classification
  }
  return [];
}

/** Reads (a bounded part of) an error response and turns it into a typed error. */
export async function errorFromResponse(
  res: HttpResponse,
  ctx: RequestContext,
): Promise<FerryError> {
  const text = await readBounded(res, 64 * 1024);
  return classify(res.status, parseErrorBody(text), ctx, (name) => header(res, name));
}

async function readBounded(res: HttpResponse, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      if (size + b.length > limit) {
        chunks.push(b.subarray(0, limit - size));
        res.body.destroy();
        break;
      }
      chunks.push(b);
      size += b.length;
    }
  } catch {
    // a broken error body is still an error response; classify by status
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function classify(
  status: number,
  errors: RegistryErrorBody[],
  ctx: RequestContext,
  headerOf: (name: string) => string | undefined = () => undefined,
): FerryError {
  const first = errors[0];
  const registryCode = first?.code;
  const detail = first?.message ? ` (registry said: ${first.message})` : "";
  const where = `${ctx.host}/${ctx.repository}`;
  const fields = {
    status,
    registryCode,
    host: ctx.host,
    repository: ctx.repository,
    reference: ctx.reference ?? ctx.digest,
  };
  let code: ErrorCode | undefined =
    registryCode === undefined ? undefined : CODE_TABLE[registryCode];
  if (code === undefined) {
    if (status === 401) code = "FERRY_AUTH_REQUIRED";
    else if (status === 403) code = "FERRY_DENIED";
    else if (status === 404)
      code =
        ctx.what === "blob"
          ? "FERRY_BLOB_UNKNOWN"
          : ctx.what === "manifest"
            ? "FERRY_MANIFEST_UNKNOWN"
            : "FERRY_NAME_UNKNOWN";
    else if (status === 429) code = "FERRY_TOO_MANY_REQUESTS";
    else if (status >= 500) code = "FERRY_REGISTRY_UNAVAILABLE";
    else code = "FERRY_REGISTRY_ERROR";
  }
  switch (code) {
    case "FERRY_NAME_UNKNOWN":
      return new FerryError(code, `repository ${where} not found${detail}`, {
        hint: "check the repository name; names are case-sensitive and must include the registry host for non-Docker-Hub images",
        fields,
      });
    case "FERRY_MANIFEST_UNKNOWN":
      return new FerryError(
        code,
        `manifest ${ctx.reference ?? ""} not found in ${where}${detail}`,
        {
          hint: "check the tag or digest; `ferry` shows the fully resolved reference it asked for",
          fields,
        },
      );
    case "FERRY_BLOB_UNKNOWN":
      return new FerryError(code, `blob ${ctx.digest ?? ""} not found in ${where}${detail}`, {
        hint: "the image's manifest refers to a blob the registry does not have; the image is broken upstream — re-push it",
        fields,
      });
    case "FERRY_AUTH_REQUIRED":
      return new FerryError(
        code,
        `registry ${ctx.host} requires authentication for ${ctx.repository}${detail}`,
        {
          hint: `log in with \`ferry login ${ctx.host}\` (or \`docker login ${ctx.host}\`)`,
          fields,
        },
      );
    case "FERRY_DENIED":
      return new FerryError(code, `access to ${where} denied by the registry${detail}`, {
        hint: "your credentials are valid but not allowed to pull this repository; ask its owner for access",
        fields,
      });
    case "FERRY_TOO_MANY_REQUESTS": {
      const limit = headerOf("ratelimit-limit");
      const reset = headerOf("ratelimit-reset") ?? headerOf("retry-after");
      const facts = [limit ? `limit ${limit}` : "", reset ? `resets in ${reset}s` : ""]
        .filter(Boolean)
        .join(", ");
      return new FerryError(
        code,
        `registry ${ctx.host} is rate limiting requests${facts ? ` (${facts})` : ""}${detail}`,
        {
          hint: "wait for the limit to reset, log in for a higher limit, or pull through a mirror",
          fields: { ...fields, limit, reset },
        },
      );
    }
    case "FERRY_REGISTRY_UNAVAILABLE":
      return new FerryError(
        code,
        `registry ${ctx.host} failed with HTTP ${status} after retries${detail}`,
        {
          hint: "the registry is having trouble; retry later",
          fields,
        },
      );
    default:
      return new FerryError(
        code,
        `registry ${ctx.host} answered HTTP ${status} for ${ctx.what} of ${where}${detail}`,
        {
          hint: "the registry answered something ferry did not expect: check the registry address, and whether it speaks http or https (registries.HOST.plainHttp in the config)",
          fields,
        },
      );
  }
}
