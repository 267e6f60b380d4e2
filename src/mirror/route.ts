import { isDigest } from "../digest/index.ts";
import { parseRepository } from "../reference/index.ts";
import { DistributionError } from "./errors.ts";

/** A parsed request to the mirror: what is asked for, before anything is looked up. */
export type MirrorRequest =
  | { kind: "base" }
  | { kind: "health" }
  | { kind: "ready" }
  | { kind: "metrics" }
  | { kind: "manifest"; name: string; reference: string; namespace: string | undefined }
  | { kind: "blob"; name: string; digest: string; namespace: string | undefined }
  | {
      kind: "tags";
      name: string;
      namespace: string | undefined;
      n: number | undefined;
      last: string | undefined;
    }
  | { kind: "write"; name: string };

const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * Parses `/v2/<name>/(manifests|blobs|tags)/…` into a value; throws a
 * DistributionError for what no registry would accept. `?ns=` (containerd's
 * mirror convention) names the registry a request is for. A read of a name,
 * reference or digest that cannot exist is 404 with the endpoint's "unknown" code,
 * as the OCI distribution spec's endpoint table has it (a 400 fails its conformance).
 */
export function parseRequest(method: string, rawUrl: string): MirrorRequest {
  const url = new URL(rawUrl, "http://mirror.invalid");
  const path = url.pathname;
  const namespace = url.searchParams.get("ns") ?? undefined;
  if (path === "/healthz") return { kind: "health" };
  if (path === "/readyz") return { kind: "ready" };
  if (path === "/metrics") return { kind: "metrics" };
  if (path === "/v2/" || path === "/v2") return { kind: "base" };
  if (!path.startsWith("/v2/"))
    throw new DistributionError(404, "NOT_FOUND", `no route for ${path}`);
  const rest = path.slice(4);
  const upload = /^(.+)\/blobs\/uploads\/?.*$/.exec(rest);
  if (upload !== null) return { kind: "write", name: checkName(upload[1] as string) };
  const m = /^(.+)\/(manifests|blobs|tags)\/(.+)$/.exec(rest);
  if (m === null) throw new DistributionError(404, "NOT_FOUND", `no route for ${path}`);
  const read = method === "GET" || method === "HEAD";
  const name = read ? knownName(m[1] as string) : checkName(m[1] as string);
  const kind = m[2] as string;
  const ref = decodeURIComponent(m[3] as string);
  if (kind === "tags") {
    if (ref !== "list") throw new DistributionError(404, "NOT_FOUND", `no route for ${path}`);
    const n = url.searchParams.get("n");
    const count = n === null ? undefined : Number(n);
    if (count !== undefined && (!Number.isInteger(count) || count < 0)) {
      throw new DistributionError(400, "PAGINATION_NUMBER_INVALID", `invalid n=${n}`);
    }
    return {
      kind: "tags",
      name,
      namespace,
      n: count,
      last: url.searchParams.get("last") ?? undefined,
    };
  }
  if (!read) return { kind: "write", name };
  if (kind === "blobs") {
    if (!isDigest(ref))
      throw new DistributionError(404, "BLOB_UNKNOWN", `${ref} is not a digest`, {
        detail: { digest: ref },
      });
    return { kind: "blob", name, digest: ref, namespace };
  }
  if (!isDigest(ref) && !TAG.test(ref))
    throw new DistributionError(404, "MANIFEST_UNKNOWN", `${ref} is neither a tag nor a digest`, {
      detail: { reference: ref },
    });
  return { kind: "manifest", name, reference: ref, namespace };
}

/** For a read: a name no repository can have is unknown (404), as the spec's endpoint table has it. */
function knownName(name: string): string {
  try {
    return checkName(name);
  } catch {
    throw new DistributionError(404, "NAME_UNKNOWN", `${name} is not a repository name`, {
      detail: { name },
    });
  }
}

function checkName(name: string): string {
  try {
    const parsed = parseRepository(`mirror.invalid/${name}`);
    if (parsed.path !== name) throw new Error("changed");
  } catch {
    throw new DistributionError(400, "NAME_INVALID", `invalid repository name ${name}`);
  }
  return name;
}
