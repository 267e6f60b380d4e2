/** The CRI messages ferry reads and writes, as plain values (field names as in cri.proto). */
import type { Credential } from "../config/index.ts";
import { apiHost, isLoopbackHost, type Reference } from "../reference/index.ts";
import { asFields, booleanField, stringField, stringsField } from "./fields.ts";

/** What RuntimeService/Version says. */
export interface RuntimeVersion {
  readonly runtimeName: string;
  readonly runtimeVersion: string;
  readonly runtimeApiVersion: string;
}

/** What ImageStatus says of an image. */
export interface CriImage {
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
  readonly pinned: boolean;
}

export function readVersion(answer: unknown): RuntimeVersion {
  const fields = asFields(answer);
  return {
    runtimeName: stringField(fields, "runtime_name") ?? "",
    runtimeVersion: stringField(fields, "runtime_version") ?? "",
    runtimeApiVersion: stringField(fields, "runtime_api_version") ?? "",
  };
}

/** An ImageStatusResponse's image; undefined when the runtime has none by that name. */
export function readImageStatus(answer: unknown): CriImage | undefined {
  const image = asFields(asFields(answer)?.["image"]);
  const id = stringField(image, "id");
  if (id === undefined || id === "") return undefined;
  return {
    id,
    repoTags: stringsField(image, "repo_tags"),
    repoDigests: stringsField(image, "repo_digests"),
    pinned: booleanField(image, "pinned"),
  };
}

/** One image filesystem the runtime reports (ImageFsInfo). */
export interface ImageFilesystem {
  /** where it is mounted, as the runtime sees it */
  readonly mountpoint: string;
  /** bytes the runtime's images take on it */
  readonly usedBytes: number | undefined;
}

/** An ImageFsInfoResponse's image filesystems (those with a mountpoint). */
export function readImageFsInfo(answer: unknown): ImageFilesystem[] {
  const list = asFields(answer)?.["image_filesystems"];
  if (!Array.isArray(list)) return [];
  return list.flatMap((entry): ImageFilesystem[] => {
    const fields = asFields(entry);
    const mountpoint = stringField(asFields(fields?.["fs_id"]), "mountpoint");
    if (mountpoint === undefined || mountpoint === "") return [];
    const used = asFields(fields?.["used_bytes"])?.["value"];
    const usedBytes =
      typeof used === "string" || typeof used === "number" ? Number(used) : undefined;
    return [{ mountpoint, usedBytes }];
  });
}

/**
 * CRI AuthConfig for the image's registry. `server_address` names the host the runtime will
 * call (Docker Hub's API host for docker.io): containerd then gives the credential to that host
 * only, not to mirrors. An identity token goes without a username, or containerd would send it
 * as a basic-auth password.
 */
export function authConfig(ref: Reference, credential: Credential): Record<string, string> {
  const host = apiHost(ref.domain);
  const server_address = `${isLoopbackHost(host) ? "http" : "https"}://${host}`;
  return "identityToken" in credential
    ? { identity_token: credential.identityToken, server_address }
    : { username: credential.username, password: credential.password, server_address };
}
