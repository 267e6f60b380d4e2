/**
 * Docker Engine as a warm target: status by image inspect, pulls through `POST /images/create`
 * so the daemon fetches from the registry itself (its own mirrors, insecure-registry rules and
 * storage driver apply). Docker names Docker Hub images by their familiar names.
 */
import { authKeyFor, type Credential } from "../config/index.ts";
import { familiarName, type Reference } from "../reference/index.ts";
import { DockerApi } from "./docker-api.ts";
import { dockerEndpoint } from "./endpoint.ts";
import { pullFailed, runtimeError, runtimeUnavailable } from "./errors.ts";
import { asFields, parseJson, stringField, stringsField } from "./fields.ts";
import { heldForPlatform } from "./platform.ts";
import type { ImagePresence, Target, TargetPullOptions } from "./target.ts";

const RUNTIME = "docker";
const DEFAULT_TIMEOUT_MS = 30_000;

export interface DockerTargetOptions {
  /** unix:///path/docker.sock or tcp://host:port; else DOCKER_HOST, else unix:///var/run/docker.sock. */
  host?: string;
  /** Where DOCKER_HOST is read; process.env by default. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Limit on a silent daemon for ping and status (not pulls); 30 s by default. */
  timeoutMs?: number;
}

export class DockerTarget implements Target {
  readonly kind = "docker" as const;
  readonly name: string;
  readonly #api: DockerApi;
  readonly #timeoutMs: number;

  constructor(options: DockerTargetOptions = {}) {
    const endpoint = dockerEndpoint(options.host, options.env);
    this.#api = new DockerApi(endpoint);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.name = `docker (${endpoint.text})`;
  }

  async ping(signal?: AbortSignal): Promise<void> {
    const answer = await this.#api.call({
      method: "GET",
      path: "/_ping",
      signal,
      idleTimeoutMs: this.#timeoutMs,
    });
    if (answer.status === 200) return;
    throw runtimeUnavailable(RUNTIME, this.#api.endpoint, DockerApi.messageOf(answer), {
      hint: "the daemon answered but is not ready; check `docker info` and the daemon's log",
    });
  }

  async status(ref: Reference, signal?: AbortSignal, platform?: string): Promise<ImagePresence> {
    const answer = await this.#api.call({
      method: "GET",
      path: `/images/${dockerName(ref)}/json`,
      signal,
      idleTimeoutMs: this.#timeoutMs,
    });
    if (answer.status === 404) return { present: false };
    const image = asFields(answer.body);
    const id = stringField(image, "Id");
    if (answer.status !== 200 || id === undefined) {
      throw runtimeError(RUNTIME, `inspect ${dockerName(ref)}`, DockerApi.messageOf(answer));
    }
    const held = {
      os: stringField(image, "Os"),
      architecture: stringField(image, "Architecture"),
      variant: stringField(image, "Variant"),
    };
    // The tag's copy for another platform (pulled with another --platform) is not this one.
    if (platform !== undefined && !heldForPlatform(platform, held)) return { present: false };
    return { present: true, id, repoDigests: stringsField(image, "RepoDigests") };
  }

  async pull(ref: Reference, options: TargetPullOptions = {}): Promise<ImagePresence> {
    const name = dockerName(ref);
    const query = new URLSearchParams({
      fromImage: familiarName({ ...ref, tag: undefined, digest: undefined }),
      tag: ref.digest ?? ref.tag ?? "latest",
    });
    if (options.platform !== undefined) query.set("platform", options.platform);
    const res = await this.#api.send({
      method: "POST",
      path: `/images/create?${query}`,
      headers:
        options.credential === undefined
          ? {}
          : { "X-Registry-Auth": registryAuthHeader(ref, options.credential) },
      signal: options.signal,
    });
    if (res.statusCode !== 200) {
      const text = await this.#api.readText(res, options.signal);
      const message = DockerApi.messageOf({
        status: res.statusCode ?? 0,
        body: parseJson(text) ?? text,
      });
      throw pullFailed(RUNTIME, name, message);
    }
    const error = await this.#api.readProgress(res, options.signal);
    if (error !== undefined) throw pullFailed(RUNTIME, name, error);
    const presence = await this.status(ref, options.signal, options.platform);
    if (!presence.present) {
      throw pullFailed(RUNTIME, name, "the daemon reported success but does not list the image");
    }
    return presence;
  }

  async close(): Promise<void> {
    this.#api.close();
  }
}

/**
 * Docker's name for a reference: familiar for Docker Hub ("busybox:1.36"); by digest alone when
 * pinned, since the digest is what matters and Docker looks images up by it.
 */
export function dockerName(ref: Reference): string {
  return familiarName(ref.digest === undefined ? ref : { ...ref, tag: undefined });
}

/**
 * The `X-Registry-Auth` header: base64url (padded, as Docker's Go decoder wants) of the JSON
 * auth config, with `serveraddress` spelled as Docker's config.json keys it.
 */
export function registryAuthHeader(ref: Reference, credential: Credential): string {
  const serveraddress = authKeyFor(ref.domain);
  const config =
    "identityToken" in credential
      ? {
          ...(credential.username === undefined ? {} : { username: credential.username }),
          identitytoken: credential.identityToken,
          serveraddress,
        }
      : { username: credential.username, password: credential.password, serveraddress };
  return Buffer.from(JSON.stringify(config), "utf8")
    .toString("base64")
    .replace(/\+/g, "-")
    .replace(/\//g, "_");
}
