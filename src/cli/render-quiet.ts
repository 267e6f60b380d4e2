import type { PullSummary } from "../pull/index.ts";
import { formatReference, parseReference } from "../reference/index.ts";
import type { Output } from "./output.ts";
import type { PullRenderer } from "./render-pull.ts";

/**
 * `pull -q`: each pulled reference on a line, in the order of the command line (pulls run at
 * once and finish in any order), so `ferry pull -q A B C` lines up with its arguments.
 */
export class QuietRenderer implements PullRenderer {
  readonly #output: Output;
  /** One slot per argument: undefined until settled, then its line ("" for a failure). */
  readonly #slots: Array<{ reference: string; line: string | undefined }>;
  #printed = 0;

  constructor(output: Output, references: readonly string[]) {
    this.#output = output;
    this.#slots = references.map((reference) => ({ reference, line: undefined }));
  }

  event(): void {}

  done(s: PullSummary): void {
    this.#settle(s.reference, `${s.reference}\n`);
  }

  failed(reference: string): void {
    // The error is on stderr already; the arguments after it need not wait for anything.
    this.#settle(formatReference(parseReference(reference)), "");
  }

  close(): void {}

  #settle(reference: string, line: string): void {
    const slot = this.#slots.find((s) => s.reference === reference && s.line === undefined);
    if (slot === undefined) {
      this.#output.out(line);
      return;
    }
    slot.line = line;
    for (let next = this.#slots[this.#printed]; next?.line !== undefined; ) {
      this.#output.out(next.line);
      this.#printed++;
      next = this.#slots[this.#printed];
    }
  }
}
