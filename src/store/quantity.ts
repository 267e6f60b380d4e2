import { FerryError } from "../observe/index.ts";

// Sizes and durations as users type them on the command line, parsed strictly: a
// typo is an error that says what is accepted, never a silently different number.

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const SIZE_HINT =
  "write a number and a unit: B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. 20GB or 512MiB";

/** Parses "20GB", "512MiB", "1.5GB", "4096" (bytes) into bytes. */
export function parseSize(text: string, option = "size"): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (m === null) throw invalid(`${option} "${text}" is not a size`, SIZE_HINT);
  const unit = (m[2] ?? "").toLowerCase();
  const factor = unit === "" ? 1 : SIZE_UNITS[unit];
  if (factor === undefined) {
    const hint = /^[kmgt]$/.test(unit)
      ? `"${m[2]}" is ambiguous: write ${m[1]}${unit.toUpperCase()}B (powers of 1000) or ${m[1]}${unit.toUpperCase()}iB (powers of 1024)`
      : SIZE_HINT;
    throw invalid(`${option} "${text}" has an unknown unit "${m[2]}"`, hint);
  }
  const bytes = Number(m[1]) * factor;
  if (!Number.isSafeInteger(Math.floor(bytes))) throw invalid(`${option} "${text}" is too large`);
  return Math.floor(bytes);
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

const DURATION_HINT = "write whole numbers with units s, m, h, d, w, e.g. 30m, 48h, 7d or 1h30m";

/** Parses "30m", "48h", "7d", "1h30m" into milliseconds. */
export function parseDuration(text: string, option = "duration"): number {
  const t = text.trim();
  if (!/^(\d+[smhdw])+$/.test(t)) {
    const hint = /^\d+$/.test(t) ? `add a unit, e.g. ${t}h or ${t}d` : DURATION_HINT;
    throw invalid(`${option} "${text}" is not a duration`, hint);
  }
  let ms = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([smhdw])/g)) {
    ms += Number(n) * (DURATION_UNITS[unit as string] ?? 0);
  }
  if (!Number.isSafeInteger(ms)) throw invalid(`${option} "${text}" is too long`);
  return ms;
}

/** Parses a whole percentage 0–100. */
export function parsePercent(text: string, option = "percentage"): number {
  const t = text.trim().replace(/%$/, "");
  const n = /^\d+$/.test(t) ? Number(t) : Number.NaN;
  if (!(n >= 0 && n <= 100)) {
    throw invalid(`${option} "${text}" is not a whole percentage`, "use 0 to 100, e.g. 85");
  }
  return n;
}

function invalid(message: string, hint = SIZE_HINT): FerryError {
  return new FerryError("FERRY_INVALID_ARGUMENT", message, { hint });
}
