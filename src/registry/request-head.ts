import { FerryError } from "../observe/index.ts";
import { USER_AGENT } from "./headers.ts";
import { redact } from "./network-error.ts";

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function parseTarget(url: string): URL {
  let target: URL;
  try {
    target = new URL(url);
  } catch (cause) {
    throw new FerryError("FERRY_INVALID_ARGUMENT", `invalid URL ${redact(url)}`, { cause });
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    throw new FerryError("FERRY_INVALID_ARGUMENT", `unsupported URL scheme in ${redact(url)}`);
  }
  return target;
}

export function requestHead(
  target: URL,
  headers: Record<string, string>,
  range: { start: number } | undefined,
  method = "GET",
): string {
  const all: Record<string, string> = { host: target.host, "user-agent": USER_AGENT, ...headers };
  all["connection"] = "close";
  if (range !== undefined) {
    if (!Number.isSafeInteger(range.start) || range.start < 0) {
      throw new FerryError("FERRY_INVALID_ARGUMENT", `invalid range start ${range.start}`);
    }
    all["range"] = `bytes=${range.start}-`;
  }
  let head = `${method} ${target.pathname}${target.search} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(all)) {
    if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) {
      throw new FerryError(
        "FERRY_INVALID_ARGUMENT",
        `invalid request header ${JSON.stringify(name)}`,
      );
    }
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}
