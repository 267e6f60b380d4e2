import { createRequire } from "node:module";

/**
 * `util.parseArgs`, taken with require(): an ESM import of node:util evaluates every export
 * of its facade (worker_threads among them), ~6 ms of every command's start-up.
 */
export const { parseArgs } = createRequire(import.meta.url)(
  "node:util",
) as typeof import("node:util");
