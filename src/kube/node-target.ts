/**
 * The runtime target as the node agent hands it to the agent: each pull first looks up the
 * PrePulls' imagePullSecrets for the image's registry and checks the headroom, and its outcome
 * (pulling, failed with a reason, done) is reported for the node's status.
 */
import type { CoreV1Api } from "@kubernetes/client-node";
import { type Credential, canonicalHost } from "../config/index.ts";
import { formatReference, type Reference } from "../reference/index.ts";
import type { ImagePresence, Target, TargetPullOptions } from "../runtime/index.ts";
import { apiMessage } from "./api-errors.ts";
import { type PrePull, prepullKey } from "./prepull.ts";
import { credentialsFromSecret } from "./pull-secrets.ts";

export interface PullHooks {
  /** The credential for `image`, from its PrePulls' pull secrets (undefined: none applies). */
  credential(image: string, ref: Reference): Promise<Credential | undefined>;
  /** Throws to refuse the pull (headroom). */
  check(image: string, ref: Reference, credential: Credential | undefined): Promise<void>;
  pulling(image: string): void;
  pulled(image: string): void;
  failed(image: string, error: unknown): void;
}

export function wrapTarget(target: Target, hooks: PullHooks): Target {
  const pull = async (
    ref: Reference,
    pullOptions: TargetPullOptions = {},
  ): Promise<ImagePresence> => {
    const image = formatReference(ref);
    hooks.pulling(image);
    try {
      const credential = (await hooks.credential(image, ref)) ?? pullOptions.credential;
      await hooks.check(image, ref, credential);
      const presence = await target.pull(ref, {
        ...pullOptions,
        ...(credential === undefined ? {} : { credential }),
      });
      hooks.pulled(image);
      return presence;
    } catch (error) {
      hooks.failed(image, error);
      throw error;
    }
  };
  const wrapped: Target = {
    kind: target.kind,
    name: target.name,
    ping: (signal) => target.ping(signal),
    status: (ref, signal, platform) => target.status(ref, signal, platform),
    pull,
    close: () => target.close(),
  };
  if (target.pin !== undefined) wrapped.pin = (ref, signal) => target.pin!(ref, signal);
  if (target.unpin !== undefined) wrapped.unpin = (ref, signal) => target.unpin!(ref, signal);
  if (target.imageFilesystems !== undefined)
    wrapped.imageFilesystems = (signal) => target.imageFilesystems!(signal);
  return wrapped;
}

/** The first credential for the image's registry in the pull secrets of the PrePulls naming it. */
export async function secretCredential(
  core: CoreV1Api,
  prepulls: readonly PrePull[],
  naming: ReadonlySet<string> | undefined,
  ref: Reference,
  log: (entry: Record<string, unknown>) => void,
): Promise<Credential | undefined> {
  if (naming === undefined || naming.size === 0) return undefined;
  const host = canonicalHost(ref.domain);
  for (const p of prepulls) {
    if (!naming.has(prepullKey(p))) continue;
    for (const { name } of p.spec?.imagePullSecrets ?? []) {
      if (!name) continue;
      try {
        const secret = await core.readNamespacedSecret({
          name,
          namespace: p.metadata?.namespace ?? "",
        });
        const credential = credentialsFromSecret(secret).get(host);
        if (credential !== undefined) return credential;
      } catch (error) {
        log({
          level: "warn",
          msg: "pull secret not read",
          secret: `${p.metadata?.namespace}/${name}`,
          error: apiMessage(error),
        });
      }
    }
  }
  return undefined;
}
