/**
 * Makes a push announcement count. The warm function pulls only what a target lacks, so a
 * re-pushed tag (`:latest`, `:stable`) would look present and never move. The gate wraps
 * each target's status(): after a push of a tag, a target whose copy is not the announced
 * digest reports the image missing, once, so the warm function pulls it again (which
 * resolves the tag anew). A push without a digest (Docker Hub) asks for one re-pull.
 */
import { formatReference, type Reference } from "../reference/index.ts";
import type { ImagePresence, Target } from "../runtime/index.ts";
import type { WarmResult } from "./types.ts";

/** A re-pull is wanted, whatever the target holds. */
const ANY = "";

export class FreshnessGate {
  /** `${image} ${target}` → the digest the sender announced (ANY: none given). */
  readonly #wanted = new Map<string, string>();

  /** Records a push of `ref` (a tag) with the digest the sender gave, if any. */
  announce(ref: Reference, digest: string | undefined, targets: readonly Target[]): void {
    const image = formatReference(ref);
    for (const t of targets) this.#wanted.set(`${image} ${t.kind}`, digest ?? ANY);
  }

  /** A pull that ended (or a target found current) settles the announcement for that target. */
  settle(result: WarmResult): void {
    if (result.state === "pulled" || result.state === "present") {
      this.#wanted.delete(`${result.image} ${result.target}`);
    }
  }

  wrap(target: Target): Target {
    const wanted = this.#wanted;
    const status = async (
      ref: Reference,
      signal?: AbortSignal,
      platform?: string,
    ): Promise<ImagePresence> => {
      const presence = await target.status(ref, signal, platform);
      const want = wanted.get(`${formatReference(ref)} ${target.kind}`);
      if (!presence.present || want === undefined) return presence;
      const current =
        want !== ANY &&
        (presence.id === want || (presence.repoDigests ?? []).some((d) => d.endsWith(`@${want}`)));
      return current ? presence : { present: false };
    };
    // Everything but status() is the target's own (pin, close, ping, pull, name, kind).
    return {
      kind: target.kind,
      name: target.name,
      ping: (signal) => target.ping(signal),
      status,
      pull: (ref, options) => target.pull(ref, options),
      ...(target.pin === undefined
        ? {}
        : { pin: (ref: Reference, signal?: AbortSignal) => target.pin!(ref, signal) }),
      close: () => target.close(),
    };
  }
}
