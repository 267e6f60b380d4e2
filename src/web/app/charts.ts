/**
 * Three charts (uPlot): store usage against the prune watermarks, the mirror's hit ratio and
 * bytes served vs fetched upstream, and a histogram of pull durations. Each sits in a figure
 * with a caption and a one-line text summary, so the numbers are there without the picture.
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatBytes, formatSeconds } from "./format.ts";
import type { ActivityEntry, MirrorSample, StoreSample } from "./types.ts";

/** Upper bounds (seconds) of the duration histogram's buckets; the last is open. */
export const DURATION_BUCKETS = [0.5, 1, 2, 5, 10, 30, 60, Number.POSITIVE_INFINITY] as const;
const BUCKET_LABELS = ["<0.5s", "0.5–1s", "1–2s", "2–5s", "5–10s", "10–30s", "30–60s", ">60s"];

interface Palette {
  readonly text: string;
  readonly grid: string;
  readonly a: string;
  readonly b: string;
  readonly c: string;
  readonly warn: string;
}

function palette(): Palette {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string) => css.getPropertyValue(name).trim();
  return {
    text: v("--fg"),
    grid: v("--grid"),
    a: v("--chart-a"),
    b: v("--chart-b"),
    c: v("--chart-c"),
    warn: v("--bad"),
  };
}

/** The x axis, the left axis and, when given, a right one (its own scale, no grid). */
function axes(
  p: Palette,
  parts: { x?: uPlot.Axis; left: uPlot.Axis; right?: uPlot.Axis },
): uPlot.Axis[] {
  const base = { stroke: p.text, grid: { stroke: p.grid, width: 1 }, ticks: { stroke: p.grid } };
  return [
    { ...base, ...parts.x },
    { ...base, ...parts.left },
    ...(parts.right === undefined
      ? []
      : [{ ...base, side: 1, grid: { show: false }, size: 70, ...parts.right }]),
  ];
}

const PERCENT_AXIS: uPlot.Axis = {
  scale: "%",
  values: (_u, ticks) => ticks.map((t) => `${t}%`),
};
const BYTES_AXIS: uPlot.Axis = {
  scale: "bytes",
  values: (_u, ticks) => ticks.map((t) => formatBytes(t)),
};
/** Whole counts only: no "0.5 pulls". */
const COUNT_AXIS: uPlot.Axis = {
  values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : "")),
};
const BUCKET_AXIS: uPlot.Axis = {
  values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (BUCKET_LABELS[t] ?? "") : "")),
};

/** One uPlot in a container, rebuilt when the colour scheme or the width changes. */
class Chart {
  readonly #host: HTMLElement;
  readonly #make: (p: Palette, width: number) => uPlot.Options;
  #plot: uPlot | undefined;
  #data: uPlot.AlignedData | undefined;

  constructor(host: HTMLElement, make: (p: Palette, width: number) => uPlot.Options) {
    this.#host = host;
    this.#make = make;
    new ResizeObserver(() => this.#resize()).observe(host);
  }

  set(data: uPlot.AlignedData): void {
    this.#data = data;
    if (this.#plot === undefined || this.#plot.series.length !== data.length) this.rebuild();
    else {
      this.#plot.setData(data);
      showLatest(this.#plot);
    }
  }

  rebuild(): void {
    this.#plot?.destroy();
    this.#plot = undefined;
    if (this.#data === undefined) return;
    const options = this.#make(palette(), this.#width());
    options.hooks = { ...options.hooks, setLegend: [showLatest] };
    this.#plot = new uPlot(options, this.#data, this.#host);
    showLatest(this.#plot);
  }

  #width(): number {
    return Math.max(240, Math.floor(this.#host.clientWidth));
  }

  #resize(): void {
    if (this.#plot === undefined) return;
    const width = this.#width();
    if (width !== this.#plot.width) this.#plot.setSize({ width, height: this.#plot.height });
  }
}

/** Away from the cursor the legend shows the newest values, not blanks. */
function showLatest(u: uPlot): void {
  const last = (u.data[0]?.length ?? 0) - 1;
  // uPlot parks the cursor at a negative position when it is not over the plot.
  const away = u.cursor.left === undefined || u.cursor.left < 0;
  if (away && last >= 0 && u.legend.idx !== last) u.setLegend({ idx: last }, false);
}

export class Charts {
  readonly #store: Chart;
  readonly #mirror: Chart;
  readonly #durations: Chart;
  readonly #summaries: { store: HTMLElement; mirror: HTMLElement; durations: HTMLElement };
  #watermarks: { high?: number; low?: number } = {};

  constructor(hosts: {
    store: HTMLElement;
    mirror: HTMLElement;
    durations: HTMLElement;
    storeSummary: HTMLElement;
    mirrorSummary: HTMLElement;
    durationSummary: HTMLElement;
  }) {
    this.#summaries = {
      store: hosts.storeSummary,
      mirror: hosts.mirrorSummary,
      durations: hosts.durationSummary,
    };
    this.#store = new Chart(hosts.store, (p, width) => ({
      width,
      height: 200,
      scales: {
        x: { range: timeRange },
        "%": { range: [0, 100] },
        bytes: { range: (_u, _min, max) => [0, Math.max(max, 1)] },
      },
      series: [
        {},
        { label: "filesystem used", scale: "%", stroke: p.a, width: 2, value: (_u, v) => pct(v) },
        // The watermarks only exist with a retention policy: no legend entry without a line.
        ...(this.#watermarks.high === undefined
          ? []
          : [
              {
                label: "prune starts",
                scale: "%",
                stroke: p.warn,
                dash: [6, 4],
                value: (_u: uPlot, v: number | null) => pct(v),
              },
              {
                label: "prune stops",
                scale: "%",
                stroke: p.c,
                dash: [2, 4],
                value: (_u: uPlot, v: number | null) => pct(v),
              },
            ]),
        { label: "store size", scale: "bytes", stroke: p.b, width: 2, value: (_u, v) => bytes(v) },
      ],
      axes: axes(p, {
        left: { ...PERCENT_AXIS, label: "filesystem used" },
        right: { ...BYTES_AXIS, label: "store size" },
      }),
    }));
    this.#mirror = new Chart(hosts.mirror, (p, width) => ({
      width,
      height: 200,
      scales: {
        x: { range: timeRange },
        "%": { range: [0, 100] },
        bytes: { range: (_u, _min, max) => [0, Math.max(max, 1)] },
      },
      series: [
        {},
        { label: "hit ratio", scale: "%", stroke: p.a, width: 2, value: (_u, v) => pct(v) },
        {
          label: "bytes served",
          scale: "bytes",
          stroke: p.b,
          width: 2,
          value: (_u, v) => bytes(v),
        },
        {
          label: "fetched upstream",
          scale: "bytes",
          stroke: p.warn,
          width: 2,
          value: (_u, v) => bytes(v),
        },
      ],
      axes: axes(p, {
        left: { ...PERCENT_AXIS, label: "hit ratio" },
        right: { ...BYTES_AXIS, label: "bytes (total)" },
      }),
    }));
    this.#durations = new Chart(hosts.durations, (p, width) => ({
      width,
      height: 200,
      scales: {
        x: { time: false, range: [-0.5, DURATION_BUCKETS.length - 0.5] },
        y: { range: (_u, _min, max) => [0, Math.max(max, 1)] },
      },
      series: [
        { label: "duration", value: (_u, v) => BUCKET_LABELS[v] ?? "" },
        {
          label: "pulls",
          stroke: p.a,
          fill: `${p.a}88`,
          width: 1,
          paths: uPlot.paths.bars?.({ size: [0.7, 60] }),
          points: { show: false },
        },
      ],
      // One bar per bucket: there is no "latest" value to show, only the cursor's.
      legend: { live: false },
      axes: axes(p, { x: BUCKET_AXIS, left: COUNT_AXIS }),
    }));
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      this.#store.rebuild();
      this.#mirror.rebuild();
      this.#durations.rebuild();
    });
  }

  store(
    usage:
      | { highPercent?: number; lowPercent?: number; samples: readonly StoreSample[] }
      | null
      | undefined,
  ): void {
    const figure = this.#summaries.store.closest("figure");
    // No store (an agent with runtime targets only): nothing to chart, so no empty box.
    if (figure) figure.hidden = usage === null || usage === undefined;
    if (usage === null || usage === undefined) return;
    this.#watermarks = { high: usage.highPercent, low: usage.lowPercent };
    const s = usage.samples;
    const wm = (v: number | undefined) => s.map(() => v ?? null);
    this.#store.set([
      s.map((x) => x.t / 1000),
      s.map((x) => x.usedPercent),
      ...(usage.highPercent === undefined ? [] : [wm(usage.highPercent), wm(usage.lowPercent)]),
      s.map((x) => x.bytes),
    ]);
    const last = s[s.length - 1];
    this.#summaries.store.textContent =
      last === undefined
        ? "No measurement yet."
        : `Store holds ${formatBytes(last.bytes)}; its filesystem is ${last.usedPercent}% full` +
          (usage.highPercent === undefined
            ? " (no retention policy: nothing is pruned automatically)."
            : `; pruning starts above ${usage.highPercent}% and stops at ${usage.lowPercent}%.`);
  }

  mirror(
    mirror:
      | {
          hits: number;
          misses: number;
          bytesServed: number;
          bytesUpstream: number;
          samples?: readonly MirrorSample[];
        }
      | null
      | undefined,
  ): void {
    const figure = this.#summaries.mirror.closest("figure");
    if (mirror === null || mirror === undefined) {
      if (figure) figure.hidden = true;
      return;
    }
    if (figure) figure.hidden = false;
    const s = mirror.samples ?? [];
    this.#mirror.set([
      s.map((x) => x.t / 1000),
      s.map((x) => (x.hits + x.misses === 0 ? null : (x.hits * 100) / (x.hits + x.misses))),
      s.map((x) => x.bytesServed),
      s.map((x) => x.bytesUpstream),
    ]);
    const total = mirror.hits + mirror.misses;
    this.#summaries.mirror.textContent =
      total === 0
        ? "The mirror has answered no requests yet."
        : `${Math.round((mirror.hits * 100) / total)}% of ${total} requests answered from the store; ` +
          `${formatBytes(mirror.bytesServed)} served, ${formatBytes(mirror.bytesUpstream)} fetched upstream.`;
  }

  durations(activity: readonly ActivityEntry[]): void {
    const counts = DURATION_BUCKETS.map(() => 0);
    const seconds = activity
      .filter((a) => a.result === "pulled" && a.seconds !== undefined)
      .map((a) => a.seconds as number);
    for (const x of seconds) counts[DURATION_BUCKETS.findIndex((b) => x < b)]! += 1;
    this.#durations.set([DURATION_BUCKETS.map((_b, i) => i), counts]);
    const sorted = [...seconds].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    this.#summaries.durations.textContent =
      seconds.length === 0
        ? "No pulls yet."
        : `${seconds.length} recent pull${seconds.length === 1 ? "" : "s"}; median ${formatSeconds(median)}, longest ${formatSeconds(sorted[sorted.length - 1])}.`;
  }
}

/** A single sample still gets a readable time axis: a minute either side. */
function timeRange(u: uPlot, min: number, max: number): uPlot.Range.MinMax {
  // uPlot widens a single point's range by years; the data's own ends are what we want.
  const xs = u.data[0] ?? [];
  const lo = xs[0] ?? min;
  const hi = xs[xs.length - 1] ?? max;
  return lo === hi ? [lo - 60, hi + 60] : [lo, hi];
}

function pct(v: number | null): string {
  return v === null ? "–" : `${Math.round(v)}%`;
}

function bytes(v: number | null): string {
  return v === null ? "–" : formatBytes(v);
}
