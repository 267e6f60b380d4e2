import { createRequire } from "node:module";
import type { MembershipSource } from "./membership.ts";

// require(), not import: an ESM import of node:http evaluates every export of its facade,
// including lazy ones that load Node's bundled undici (~40 ms on every `ferry pull`).
const { request } = createRequire(import.meta.url)("node:http") as typeof import("node:http");

const MISSES_FOR_DOWN = 3;

export interface LivenessOptions {
  membership: MembershipSource;
  /** This node's own peer address: always live, never probed. Undefined for a member without a listener. */
  self: string | undefined;
  /** Between probe rounds; default 2 s. */
  intervalMs?: number;
  /** One probe's time limit; default 3 s. */
  timeoutMs?: number;
  /** Probes in flight at once; default 8. */
  concurrency?: number;
  /**
   * Members probed per round, at random (those marked down first, up to half); default 8.
   * A node's probe cost is min(sample, N - 1) per interval whatever the fleet's size N.
   */
  sample?: number;
}

/**
 * Which members answer their health endpoint (`GET /healthz` on the peer listener).
 * Members start out live (so a fleet that starts together routes at once); three failed
 * probes in a row, or a failed connection, mark one down until a later probe succeeds. Probing is bounded:
 * one round at a time, each over a random sample of the members (not all of them: a fleet
 * would probe itself N² times a round), a few probes at once, each with a short time limit.
 * Transfers report what they see (`markDown`), and a Kubernetes membership lists only ready
 * endpoints, so a dead member is rarely found by a probe first.
 */
export class Liveness {
  readonly #o: Required<Omit<LivenessOptions, "membership" | "self">>;
  readonly #membership: MembershipSource;
  readonly self: string | undefined;
  readonly #down = new Set<string>();
  /**
   * Consecutive failed probes per member: three in a row mark it down. A busy node answers
   * late, and marking it down makes others fetch its blobs from the upstream too; a dead one
   * is marked down at once by the first transfer that cannot connect.
   */
  readonly #misses = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #stopped = false;

  constructor(options: LivenessOptions) {
    this.#membership = options.membership;
    this.self = options.self;
    this.#o = {
      intervalMs: options.intervalMs ?? 2_000,
      timeoutMs: options.timeoutMs ?? 3_000,
      concurrency: options.concurrency ?? 8,
      sample: options.sample ?? 8,
    };
  }

  /** Members other than this node that are not known to be down. */
  live(): string[] {
    return this.others().filter((m) => !this.#down.has(m));
  }

  others(): string[] {
    return this.#membership.members().filter((m) => m !== this.self);
  }

  /** A transfer from `member` failed to connect: treat it as down until a probe says otherwise. */
  markDown(member: string): void {
    this.#down.add(member);
  }

  start(): void {
    const tick = () => {
      this.#round = this.probeRound().finally(() => {
        this.#round = undefined;
        if (!this.#stopped) this.#timer = setTimeout(tick, this.#o.intervalMs).unref();
      });
    };
    // Nodes of a fleet start together: give the others one interval to come up.
    this.#timer = setTimeout(tick, this.#o.intervalMs).unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#round;
  }

  /** The members the next round probes: a random sample, down ones first (they come back only by a probe). */
  sample(): string[] {
    const others = shuffle(this.others());
    const down = others.filter((m) => this.#down.has(m));
    const first = down.slice(0, Math.ceil(this.#o.sample / 2));
    const rest = others.filter((m) => !first.includes(m));
    return [...first, ...rest].slice(0, this.#o.sample);
  }

  /** One round: a sample of the members probed once, at most `concurrency` at a time; three misses in a row mark one down. */
  async probeRound(): Promise<void> {
    const queue = this.sample();
    const worker = async () => {
      for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
        if (await probe(m, this.#o.timeoutMs)) {
          this.#down.delete(m);
          this.#misses.delete(m);
        } else {
          const misses = (this.#misses.get(m) ?? 0) + 1;
          this.#misses.set(m, misses);
          if (misses >= MISSES_FOR_DOWN) this.#down.add(m);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#o.concurrency, queue.length) }, worker));
  }
}

function shuffle(items: string[]): string[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as string, items[i] as string];
  }
  return items;
}

function probe(member: string, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const req = request(`http://${member}/healthz`, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(false));
    req.end();
  });
}
