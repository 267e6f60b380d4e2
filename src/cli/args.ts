import { createRequire } from "node:module";
import type { ParseArgsConfig } from "node:util";
import { closest } from "./suggest.ts";

/**
 * `util.parseArgs`, taken with require(): an ESM import of node:util evaluates every export
 * of its facade (worker_threads among them), ~6 ms of every command's start-up.
 */
const util = createRequire(import.meta.url)("node:util") as typeof import("node:util");

/** A command line the parser refused; `code` is the parser's (ERR_PARSE_ARGS_…). */
export class ArgumentError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "ArgumentError";
    this.code = code;
  }
}

/** `util.parseArgs`, whose refusals say what was wrong plainly, with a close match for a typo. */
export const parseArgs: typeof util.parseArgs = (config) => {
  try {
    return util.parseArgs(config);
  } catch (err) {
    throw explained(err, config);
  }
};

interface Token {
  kind: "option" | "positional" | "option-terminator";
  name?: string;
  rawName?: string;
  value?: string | undefined;
  inlineValue?: boolean | undefined;
}

/** The parser's own text quotes unevenly and suggests `--`: find the culprit and say it again. */
function explained(err: unknown, config: ParseArgsConfig | undefined): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS") || config === undefined)
    return err;
  const options = config.options ?? {};
  // Parsed again leniently, the tokens show which argument the strict parse refused.
  const { tokens } = util.parseArgs({ ...config, strict: false, tokens: true }) as {
    tokens: Token[];
  };
  const say = (message: string) => new ArgumentError(code, message);
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const unknown = tokens.find(
      (t) => t.kind === "option" && !Object.hasOwn(options, t.name ?? ""),
    );
    const raw = unknown?.rawName;
    if (raw !== undefined) {
      const match = raw.startsWith("--")
        ? closest(
            raw,
            Object.keys(options).map((name) => `--${name}`),
          )
        : undefined;
      return say(`unknown option ${raw}${match === undefined ? "" : `; did you mean ${match}?`}`);
    }
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    for (const t of tokens) {
      const type = t.kind === "option" ? options[t.name ?? ""]?.type : undefined;
      if (type === "string" && t.value === undefined) return say(`${t.rawName} needs a value`);
      if (type === "string" && !t.inlineValue && t.value?.startsWith("-"))
        return say(
          `${t.rawName} needs a value, not the option ${t.value} (a value that starts with "-" is written ${t.rawName}=VALUE)`,
        );
      if (type === "boolean" && t.inlineValue) return say(`${t.rawName} takes no value`);
    }
  }
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
    const extra = tokens.find((t) => t.kind === "positional");
    if (extra !== undefined)
      return say(`unexpected argument "${extra.value}": this command takes none`);
  }
  return say(`cannot read the command line (${(err as Error).message.replaceAll("'", "")})`);
}
