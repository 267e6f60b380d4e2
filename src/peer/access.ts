import { createHash } from "node:crypto";
import { blobPath, type RegistryClient, type Repository, send } from "../registry/index.ts";

/** What the serving node concluded about a peer's right to a repository. */
export type AccessVerdict = "allowed" | "denied" | "unknown";

export interface UpstreamAccessOptions {
  /** The node's registry client: only its idea of where each upstream is (URL, TLS) is used. */
  registry: RegistryClient;
  /**
   * Whether this node may serve `digest` under `repository` (domain/path) to anyone: the
   * repository is proven anonymously readable and is known to contain the digest (the
   * mirror's records). Checked first, and what remains when the upstream cannot be asked.
   */
  servesPublicly?: (repository: string, digest: string) => Promise<boolean>;
  /** How long a positive verdict is reused; default 60 s. */
  allowTtlMs?: number;
  /** How long a negative verdict is reused; default 10 s. */
  denyTtlMs?: number;
}

/**
 * Peer sharing never bypasses pull secrets: a blob of a repository goes to a peer only
 * if the repository is proven public and contains the blob, or the peer presented an
 * upstream credential (ferry nodes send only the upstream's bearer token for
 * `repository:NAME:pull`, never a Basic password) and the upstream accepts it for that
 * very blob (HEAD /v2/NAME/blobs/DIGEST). Verdicts are
 * cached briefly, keyed by a hash of the credential (the credential itself is never kept
 * or logged). When the upstream cannot be asked, only public repositories are served.
 */
export class UpstreamAccess {
  readonly #o: UpstreamAccessOptions;
  readonly #verdicts = new Map<string, { verdict: Promise<AccessVerdict>; until: number }>();

  constructor(options: UpstreamAccessOptions) {
    this.#o = options;
  }

  check(repo: Repository, digest: string, presented: string | undefined): Promise<AccessVerdict> {
    const repository = `${repo.domain}/${repo.path}`;
    const who = createHash("sha256")
      .update(presented ?? "")
      .digest("hex");
    const key = `${repository}\n${digest}\n${who}`;
    const now = Date.now();
    const cached = this.#verdicts.get(key);
    if (cached !== undefined && cached.until > now) return cached.verdict;
    if (this.#verdicts.size > 10_000) this.#prune(now);
    const verdict = this.#decide(repo, repository, digest, presented);
    const entry = { verdict, until: now + (this.#o.allowTtlMs ?? 60_000) };
    this.#verdicts.set(key, entry);
    verdict.then((v) => {
      if (v !== "allowed")
        entry.until = Date.now() + (v === "denied" ? (this.#o.denyTtlMs ?? 10_000) : 0);
    });
    return verdict;
  }

  async #decide(
    repo: Repository,
    repository: string,
    digest: string,
    presented: string | undefined,
  ): Promise<AccessVerdict> {
    const open = await this.#o.servesPublicly?.(repository, digest).catch(() => false);
    if (open === true) return "allowed";
    const endpoint = this.#o.registry.endpoints(repo.domain).at(-1);
    if (endpoint === undefined) return "unknown";
    try {
      const res = await send({
        method: "HEAD",
        url: `${endpoint.base}${blobPath(repo.path, digest)}`,
        headers: presented === undefined ? {} : { authorization: presented },
        tls: endpoint.tls,
        signal: AbortSignal.timeout(10_000),
      });
      res.body.resume();
      if (res.status === 200) return "allowed";
      return res.status >= 500 ? "unknown" : "denied";
    } catch {
      return "unknown";
    }
  }

  #prune(now: number): void {
    for (const [k, v] of this.#verdicts) if (v.until <= now) this.#verdicts.delete(k);
  }
}
