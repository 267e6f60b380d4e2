/**
 * Bounded history for the status page: a ring buffer that keeps the last N entries, and a
 * sampler that measures something on a timer into one. Pure data plus one unref'd timer.
 */

/** Keeps the newest `capacity` items; older ones fall off. */
export class RingBuffer<T> {
  readonly #items: T[] = [];
  readonly #capacity: number;
  #start = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`ring buffer capacity must be a positive integer, not ${capacity}`);
    }
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#items.length;
  }

  get capacity(): number {
    return this.#capacity;
  }

  push(item: T): void {
    if (this.#items.length < this.#capacity) {
      this.#items.push(item);
      return;
    }
    this.#items[this.#start] = item;
    this.#start = (this.#start + 1) % this.#capacity;
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.#items.slice(this.#start), ...this.#items.slice(0, this.#start)];
  }
}

export interface SamplerOptions<T> {
  /** Measures once; a rejection skips that sample (reported through onError). */
  readonly measure: () => Promise<T> | T;
  readonly everyMs: number;
  /** Samples kept (default 360: an hour at 10 s). */
  readonly capacity?: number;
  readonly onError?: (err: unknown) => void;
  readonly now?: () => number;
}

export type Sample<T> = T & { readonly t: number };

/** Measures at start and then every `everyMs`, keeping the last `capacity` samples with their time (ms). */
export class Sampler<T extends object> {
  readonly #options: SamplerOptions<T>;
  readonly #ring: RingBuffer<Sample<T>>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: SamplerOptions<T>) {
    this.#options = options;
    this.#ring = new RingBuffer(options.capacity ?? 360);
  }

  start(): void {
    if (this.#timer !== undefined) return;
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), this.#options.everyMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Takes one sample now (one at a time: a call while one runs joins it). */
  sample(): Promise<void> {
    this.#running ??= (async () => {
      try {
        const value = await this.#options.measure();
        this.#ring.push({ ...value, t: (this.#options.now ?? Date.now)() });
      } catch (err) {
        this.#options.onError?.(err);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  samples(): Sample<T>[] {
    return this.#ring.toArray();
  }
}
