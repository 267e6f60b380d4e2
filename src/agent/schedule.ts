/**
 * Runs a task on a cron schedule (croner computes the times; 5 fields, or 6 with seconds),
 * never two at once: a tick that comes while a run (or its jitter wait) is in progress is
 * skipped and counted. With jitter, each run first waits a random delay up to the bound, so
 * a fleet on one schedule does not hit the registry in the same second. The clock is
 * injectable, so tests drive time by hand.
 */
import { Cron } from "croner";
import { FerryError } from "../observe/index.ts";

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

// setTimeout takes at most 2^31-1 ms; longer waits are taken in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ScheduleOptions {
  /** Cron expression: `*\/30 * * * *`, or with a leading seconds field. */
  readonly cron: string;
  readonly run: (signal: AbortSignal) => Promise<void>;
  /** Random delay before each run, up to this many milliseconds (default 0). */
  readonly jitterMs?: number;
  readonly clock?: Clock;
  /** In [0, 1); Math.random by default. */
  readonly random?: () => number;
  readonly onSkip?: (tick: Date) => void;
  readonly onRunEnd?: (run: ScheduleRun) => void;
}

export interface ScheduleRun {
  readonly tick: string;
  readonly started: string;
  readonly finished: string;
  readonly ok: boolean;
  readonly error?: string;
}

export interface ScheduleStats {
  readonly cron: string;
  readonly runs: number;
  readonly skipped: number;
  readonly running: boolean;
  readonly nextRun: string | undefined;
  readonly lastRun: ScheduleRun | undefined;
}

/** Throws FERRY_INVALID_ARGUMENT when croner cannot read the expression. */
export function validateCron(expression: string, what?: string): void {
  try {
    new Cron(expression, { paused: true }).stop();
  } catch (err) {
    throw new FerryError(
      "FERRY_INVALID_ARGUMENT",
      `${what === undefined ? "" : `${what} `}"${expression}" is not a cron expression (${(err as Error).message})`,
      {
        hint: 'five fields (minute hour day month weekday), e.g. "*/30 * * * *"; a sixth in front counts seconds',
        fields: { expression },
      },
    );
  }
}

export class Schedule {
  readonly #cron: Cron;
  readonly #expression: string;
  readonly #options: ScheduleOptions;
  readonly #clock: Clock;
  readonly #abort = new AbortController();
  #timer: unknown;
  #next: Date | undefined;
  #current: Promise<void> | undefined;
  #runs = 0;
  #skipped = 0;
  #lastRun: ScheduleRun | undefined;
  #stopped = true;

  constructor(options: ScheduleOptions) {
    validateCron(options.cron);
    this.#expression = options.cron;
    this.#cron = new Cron(options.cron, { paused: true });
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#arm();
  }

  /** No more ticks; a run in progress is told to stop (its signal aborts) and awaited. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#next = undefined;
    this.#abort.abort();
    await this.#current;
  }

  stats(): ScheduleStats {
    return {
      cron: this.#expression,
      runs: this.#runs,
      skipped: this.#skipped,
      running: this.#current !== undefined,
      nextRun: this.#next?.toISOString(),
      lastRun: this.#lastRun,
    };
  }

  /** Resolves when the run in progress (if any) has ended. */
  idle(): Promise<void> {
    return this.#current ?? Promise.resolve();
  }

  #arm(): void {
    if (this.#stopped) return;
    const next = this.#cron.nextRun(new Date(this.#clock.now()));
    this.#next = next ?? undefined;
    if (next === null) return; // an expression with no future time (e.g. a past year)
    this.#wait(next);
  }

  #wait(tick: Date): void {
    const delay = Math.max(0, tick.getTime() - this.#clock.now());
    this.#timer = this.#clock.setTimeout(
      () => (delay > MAX_TIMER_MS ? this.#wait(tick) : this.#fire(tick)),
      Math.min(delay, MAX_TIMER_MS),
    );
  }

  #fire(tick: Date): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    if (this.#current !== undefined) {
      this.#skipped++;
      this.#options.onSkip?.(tick);
    } else {
      const run = this.#execute(tick).finally(() => {
        this.#current = undefined;
      });
      this.#current = run;
    }
    this.#arm();
  }

  async #execute(tick: Date): Promise<void> {
    const jitter = Math.floor(
      (this.#options.random ?? Math.random)() * (this.#options.jitterMs ?? 0),
    );
    if (jitter > 0) await this.#sleep(jitter);
    if (this.#abort.signal.aborted) return;
    const started = new Date(this.#clock.now()).toISOString();
    let error: string | undefined;
    try {
      await this.#options.run(this.#abort.signal);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    this.#runs++;
    this.#lastRun = {
      tick: tick.toISOString(),
      started,
      finished: new Date(this.#clock.now()).toISOString(),
      ok: error === undefined,
      ...(error === undefined ? {} : { error }),
    };
    this.#options.onRunEnd?.(this.#lastRun);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = this.#clock.setTimeout(resolve, ms);
      this.#abort.signal.addEventListener(
        "abort",
        () => {
          this.#clock.clearTimeout(handle);
          resolve();
        },
        { once: true },
      );
    });
  }
}
