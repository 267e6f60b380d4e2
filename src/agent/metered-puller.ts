/**
 * The pull engine, counting what it downloads: the store target's pulls report their bytes
 * to the agent's metrics (a runtime pulling for itself does not say).
 */
import { Puller, type PullerOptions, type PullOptions, type PullSummary } from "../pull/index.ts";
import type { Reference } from "../reference/index.ts";

export class MeteredPuller extends Puller {
  readonly #onBytes: (bytes: number) => void;

  constructor(options: PullerOptions, onBytes: (bytes: number) => void) {
    super(options);
    this.#onBytes = onBytes;
  }

  override async pull(input: string | Reference, options?: PullOptions): Promise<PullSummary> {
    const summary = await super.pull(input, options);
    this.#onBytes(summary.bytesDownloaded);
    return summary;
  }
}
