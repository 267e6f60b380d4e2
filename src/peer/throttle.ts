import { setTimeout as sleep } from "node:timers/promises";

/**
 * A token bucket shared by every response of the peer listener: the node's upload
 * cap. `take(n)` resolves when n bytes may be sent. Rate 0 means unlimited.
 */
export class Throttle {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last = performance.now();
  /** Takers wait in turn, so one large response cannot starve the others. */
  #queue: Promise<void> = Promise.resolve();

  constructor(bytesPerSecond: number) {
    this.#rate = bytesPerSecond;
    this.#burst = Math.max(64 * 1024, Math.floor(bytesPerSecond / 10));
    this.#tokens = this.#burst;
  }

  get unlimited(): boolean {
    return this.#rate <= 0;
  }

  take(bytes: number): Promise<void> {
    if (this.unlimited) return Promise.resolve();
    const turn = this.#queue.then(() => this.#wait(bytes));
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  async #wait(bytes: number): Promise<void> {
    let needed = bytes;
    while (needed > 0) {
      this.#refill();
      const grant = Math.min(needed, this.#tokens);
      this.#tokens -= grant;
      needed -= grant;
      if (needed > 0) await sleep(Math.max(1, (Math.min(needed, this.#burst) / this.#rate) * 1000));
    }
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
  }
}
