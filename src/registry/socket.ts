import { createRequire } from "node:module";
import { isIP, type OnReadOpts, connect as plainConnect, type Socket } from "node:net";
import type * as Tls from "node:tls";
import { FerryError } from "../observe/index.ts";
import type { AddressGuard } from "./address-guard.ts";
import type { TlsSettings } from "./endpoint.ts";
import { USER_AGENT } from "./headers.ts";
import { redact } from "./network-error.ts";

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `onread`: receive into that buffer instead of a fresh one per read ('data' events then stop). */
export function connect(
  target: URL,
  tls: TlsSettings | undefined,
  guard: AddressGuard | undefined,
  onread: OnReadOpts | undefined,
): Socket {
  const host = target.hostname.replace(/^\[(.*)\]$/, "$1");
  const lookup = guard?.connectOptions(host);
  if (target.protocol === "http:") {
    const port = Number(target.port || 80);
    return plainConnect({ host, port, ...lookup, ...(onread === undefined ? {} : { onread }) });
  }
  const options: Tls.ConnectionOptions & { onread?: OnReadOpts } = {
    host,
    port: Number(target.port || 443),
    ...(onread === undefined ? {} : { onread }),
    ...tls,
    ...lookup,
  };
  if (isIP(host) === 0) options.servername = host;
  return tlsModule().connect(options);
}

// TLS is loaded on first use: loopback pulls should not pay its start-up.
const requireBuiltin = createRequire(import.meta.url);
let tlsLoaded: typeof Tls | undefined;
function tlsModule(): typeof Tls {
  tlsLoaded ??= requireBuiltin("node:tls") as typeof Tls;
  return tlsLoaded;
}

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

export function abortError(signal: AbortSignal | undefined): Error {
  return Object.assign(new Error("request aborted", { cause: signal?.reason }), {
    name: "AbortError",
  });
}
