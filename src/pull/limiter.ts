/** A counting semaphore: at most `limit` holders at once, served in arrival order. */
export class Limiter {
  readonly limit: number;
  #active = 0;
  readonly #queue: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.limit) await new Promise<void>((resolve) => this.#queue.push(resolve));
    else this.#active++;
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next !== undefined) next();
      else this.#active--;
    }
  }
}
