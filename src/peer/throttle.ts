import { setTimeout as sleep } from "node:timers/promises";

interface Taker {
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The token bucket behind a node's upload cap, with a fair share between blobs: takers
 * queue per share (one per blob), and the shares take turns, one taker each, so a blob
 * sent to many peers gets no more of the cap than one sent to a single peer.
 */
class Bucket {
  readonly rate: number;
  readonly #burst: number;
  #tokens: number;
  #last = performance.now();
  readonly #queues = new Map<string, Taker[]>();
  #running = false;

  constructor(bytesPerSecond: number) {
    this.rate = bytesPerSecond;
    this.#burst = Math.max(64 * 1024, Math.floor(bytesPerSecond / 10));
    this.#tokens = this.#burst;
  }

  take(bytes: number, share: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let queue = this.#queues.get(share);
      if (queue === undefined) {
        queue = [];
        this.#queues.set(share, queue);
      }
      queue.push({ bytes, resolve, reject });
      if (!this.#running) this.#run();
    });
  }

  /** Grants takers one share at a time, in turn (Map order: a share that empties goes to the back). */
  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queues.size > 0) {
        for (const [share, queue] of this.#queues) {
          const taker = queue.shift();
          if (queue.length === 0) this.#queues.delete(share);
          if (taker === undefined) continue;
          try {
            await this.#wait(taker.bytes);
            taker.resolve();
          } catch (err) {
            taker.reject(err);
          }
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #wait(bytes: number): Promise<void> {
    let needed = bytes;
    while (needed > 0) {
      this.#refill();
      const grant = Math.min(needed, this.#tokens);
      this.#tokens -= grant;
      needed -= grant;
      if (needed > 0) await sleep(Math.max(1, (Math.min(needed, this.#burst) / this.rate) * 1000));
    }
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
  }
}

/**
 * A node's upload cap, shared by every response of the peer listener. `take(n)` resolves
 * when n bytes may be sent; `share(digest)` is the same cap as seen by one blob's responses,
 * which take turns with other blobs'. Rate 0 means unlimited.
 */
export class Throttle {
  readonly #bucket: Bucket;
  readonly #share: string;

  /** `of`: internal, for `share`. */
  constructor(bytesPerSecond: number, of?: { bucket: Bucket; share: string }) {
    this.#bucket = of?.bucket ?? new Bucket(bytesPerSecond);
    this.#share = of?.share ?? "";
  }

  get unlimited(): boolean {
    return this.#bucket.rate <= 0;
  }

  /** The same cap for the responses of one blob (`key`): blobs take turns, one chunk each. */
  share(key: string): Throttle {
    return new Throttle(this.#bucket.rate, { bucket: this.#bucket, share: key });
  }

  take(bytes: number): Promise<void> {
    if (this.unlimited) return Promise.resolve();
    return this.#bucket.take(bytes, this.#share);
  }
}
