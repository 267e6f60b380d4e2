interface Queue {
  /** Callers waiting, first come first served; each is handed the turn by `give`. */
  readonly waiting: Array<() => void>;
}

/**
 * An in-process mutex per key (a lock file's path): one caller at a time holds the turn,
 * the others wait in order. A key without holder or waiters is forgotten.
 */
export class Turns {
  readonly #queues = new Map<string, Queue>();

  isTaken(key: string): boolean {
    return this.#queues.has(key);
  }

  /** Waits for the key's turn; rejects with `timedOut()` after `timeoutMs`, `cancelled()` on abort. */
  take(
    key: string,
    options: {
      timeoutMs: number;
      timedOut: () => Error;
      cancelled: () => Error;
      signal?: AbortSignal | undefined;
    },
  ): Promise<void> {
    const { signal } = options;
    const queue = this.#queues.get(key);
    if (queue === undefined) {
      this.#queues.set(key, { waiting: [] });
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const i = queue.waiting.indexOf(grant);
        if (i >= 0) queue.waiting.splice(i, 1);
      };
      const grant = () => {
        leave();
        resolve();
      };
      const onAbort = () => {
        leave();
        reject(options.cancelled());
      };
      const timer = setTimeout(() => {
        leave();
        reject(options.timedOut());
      }, options.timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      queue.waiting.push(grant);
    });
  }

  /** Hands the turn to the next waiter, or frees the key. */
  give(key: string): void {
    const queue = this.#queues.get(key);
    const next = queue?.waiting[0];
    if (next === undefined) this.#queues.delete(key);
    else next();
  }
}
