import type { IncomingMessage } from "node:http";
import { isFerryError } from "../observe/index.ts";
import type { Limiter } from "../pull/index.ts";
import type { RegistryClient, Repository } from "../registry/index.ts";
import type { Store } from "../store/index.ts";
import { type AccessPolicy, authenticate, authorize, unauthorized } from "./access.ts";
import { DistributionError } from "./errors.ts";
import { RepositoryMembers } from "./members.ts";
import { PublicRepositories } from "./public.ts";

/**
 * How a request may be answered: "granted" (an authenticated user allowed the repository:
 * anything the mirror can fetch with its own credentials) or "public-only" (an anonymous
 * client: only repositories proven anonymously readable upstream).
 */
export type Grant = "granted" | "public-only";

/**
 * The mirror's access model. Without a policy every client is anonymous and the mirror
 * fetches anonymously; with one, clients authenticate with Basic and the mirror fetches
 * with its own credentials. Either way a cached manifest or blob is only served under a
 * repository that contains it, and to an anonymous client only once the repository has
 * been proven public (an anonymous upstream manifest fetch succeeded).
 */
export class Guard {
  readonly #policy: AccessPolicy | undefined;
  /** Fetches without credentials: the proof that a repository is public. */
  readonly #anonymous: RegistryClient;
  /** The mirror's cap on upstream requests at once. */
  readonly #upstream: Limiter;
  readonly public: PublicRepositories;
  readonly members: RepositoryMembers;

  constructor(
    store: Store,
    anonymous: RegistryClient,
    policy: AccessPolicy | undefined,
    upstream: Limiter,
  ) {
    this.#policy = policy;
    this.#anonymous = anonymous;
    this.#upstream = upstream;
    this.public = new PublicRepositories(store);
    this.members = new RepositoryMembers(store);
  }

  /** `/v2/`: open without a policy; with one, only to valid credentials (so `docker login` works). */
  base(req: IncomingMessage): void {
    if (this.#policy === undefined) return;
    const client = authenticate(this.#policy, req.headers.authorization);
    if (client.kind === "anonymous") throw unauthorized("authentication required");
  }

  grant(req: IncomingMessage, repository: string): Grant {
    if (this.#policy === undefined) return "public-only";
    return authorize(
      this.#policy,
      authenticate(this.#policy, req.headers.authorization),
      repository,
    );
  }

  /** The registry to ask upstream on behalf of a client with `grant`. */
  registryFor(grant: Grant, own: RegistryClient): RegistryClient {
    return grant === "granted" ? own : this.#anonymous;
  }

  /** For a public-only client: proves `repo` public (anonymous manifest fetch) or refuses as the upstream did. */
  async provePublic(repo: Repository, reference: string): Promise<void> {
    const name = `${repo.domain}/${repo.path}`;
    if (await this.public.has(name)) return;
    try {
      const fetched = await this.#upstream.run(() =>
        this.#anonymous.fetchManifest(repo, reference),
      );
      this.members.learn(name, fetched.digest, {
        bytes: fetched.bytes,
        mediaType: fetched.mediaType,
      });
    } catch (err) {
      throw this.refusal(err, name);
    }
    await this.public.add(name);
  }

  /** An upstream refusal as the mirror's answer: 401 for auth, else what the upstream said. */
  refusal(err: unknown, repository: string): unknown {
    if (
      isFerryError(err) &&
      ["FERRY_AUTH_REQUIRED", "FERRY_AUTH_REJECTED", "FERRY_DENIED"].includes(err.code)
    ) {
      const message = `${repository} is not anonymously readable upstream`;
      return this.#policy === undefined
        ? new DistributionError(401, "UNAUTHORIZED", message)
        : unauthorized(message);
    }
    return err;
  }
}
