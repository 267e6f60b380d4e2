import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Clock, Schedule, validateCron } from "./schedule.ts";

/** Time that moves only when the test advances it. */
class FakeClock implements Clock {
  #now: number;
  #timers: Array<{ at: number; fn: () => void; id: number }> = [];
  #id = 0;

  constructor(start: string) {
    this.#now = Date.parse(start);
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.push({ at: this.#now + ms, fn, id });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Moves time forward, firing due timers in order and letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      const due = this.#timers
        .filter((t) => t.at <= end)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}

describe("schedule", () => {
  it("runs on each cron tick", async () => {
    const clock = new FakeClock("2026-11-23T10:00:00Z");
    const starts: string[] = [];
    const s = new Schedule({
      cron: "*/30 * * * *",
      clock,
      run: async () => {
        starts.push(new Date(clock.now()).toISOString());
      },
    });
    s.start();
    assert.equal(s.stats().nextRun, "2026-11-23T10:30:00.000Z");
    await clock.advance(61 * 60_000);
    assert.deepEqual(starts, ["2026-11-23T10:30:00.000Z", "2026-11-23T11:00:00.000Z"]);
    assert.equal(s.stats().runs, 2);
    await s.stop();
  });

  it("never overlaps: ticks during a run are skipped and counted", async () => {
    const clock = new FakeClock("2026-11-23T10:00:00Z");
    let running = 0;
    let most = 0;
    const first = gate();
    const skipped: string[] = [];
    let calls = 0;
    const s = new Schedule({
      cron: "*/10 * * * * *", // every 10 seconds
      clock,
      run: async () => {
        calls++;
        running++;
        most = Math.max(most, running);
        if (calls === 1) await first.opened;
        running--;
      },
      onSkip: (tick) => skipped.push(tick.toISOString()),
    });
    s.start();
    await clock.advance(10_000); // 10:00:10 first run starts, and hangs
    assert.equal(s.stats().running, true);
    await clock.advance(30_000); // ticks at :20, :30, :40 come while it runs
    assert.deepEqual(skipped, [
      "2026-11-23T10:00:20.000Z",
      "2026-11-23T10:00:30.000Z",
      "2026-11-23T10:00:40.000Z",
    ]);
    first.open();
    await clock.advance(10_000); // :50 runs again
    assert.equal(most, 1);
    assert.equal(calls, 2);
    assert.deepEqual([s.stats().runs, s.stats().skipped], [2, 3]);
    await s.stop();
  });

  it("waits a random delay up to the jitter before each run, and counts that wait as running", async () => {
    const clock = new FakeClock("2026-11-23T10:00:00Z");
    const starts: number[] = [];
    const s = new Schedule({
      cron: "* * * * *",
      clock,
      jitterMs: 30_000,
      random: () => 0.5,
      run: async () => {
        starts.push(clock.now());
      },
    });
    s.start();
    await clock.advance(60_000);
    assert.deepEqual(starts, [], "not yet: 15 s of jitter first");
    await clock.advance(15_000);
    assert.deepEqual(starts, [Date.parse("2026-11-23T10:01:15Z")]);
    await s.stop();
  });

  it("a failing run is recorded and the schedule goes on", async () => {
    const clock = new FakeClock("2026-11-23T10:00:00Z");
    let n = 0;
    const s = new Schedule({
      cron: "* * * * *",
      clock,
      run: async () => {
        n++;
        if (n === 1) throw new Error("registry down");
      },
    });
    s.start();
    await clock.advance(60_000);
    assert.deepEqual([s.stats().lastRun?.ok, s.stats().lastRun?.error], [false, "registry down"]);
    await clock.advance(60_000);
    assert.equal(s.stats().lastRun?.ok, true);
    await s.stop();
  });

  it("stop aborts the run in progress and awaits it; no tick fires after", async () => {
    const clock = new FakeClock("2026-11-23T10:00:00Z");
    let aborted = false;
    let calls = 0;
    const s = new Schedule({
      cron: "* * * * *",
      clock,
      run: (signal) =>
        new Promise<void>((resolve) => {
          calls++;
          signal.addEventListener("abort", () => {
            aborted = true;
            resolve();
          });
        }),
    });
    s.start();
    await clock.advance(60_000);
    await s.stop();
    assert.equal(aborted, true);
    await clock.advance(10 * 60_000);
    assert.equal(calls, 1);
    assert.equal(s.stats().nextRun, undefined);
  });

  it("rejects what is not a cron expression", () => {
    assert.throws(() => validateCron("every 5 minutes"), { code: "FERRY_INVALID_ARGUMENT" });
    assert.throws(() => validateCron("61 * * * *"), { code: "FERRY_INVALID_ARGUMENT" });
    validateCron("*/30 * * * *");
    validateCron("*/5 * * * * *");
  });
});
