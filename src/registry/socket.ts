import { createRequire } from "node:module";
import { isIP, type OnReadOpts, connect as plainConnect, type Socket } from "node:net";
import type * as Tls from "node:tls";
import type { AddressGuard } from "./address-guard.ts";
import { defaultIdleTimeoutMs } from "./deadline.ts";
import type { TlsSettings } from "./endpoint.ts";

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

/**
 * The one idle timeout of a registry connection: `fail` hears an ETIMEDOUT error once it
 * goes `ms` (default: deadline.ts's) without a byte either way, whether connecting, waiting
 * for the head or reading the body. Returns the timeout it set.
 */
export function idleTimeout(
  connection: { setTimeout(ms: number, onIdle: () => void): unknown },
  ms: number | undefined,
  fail: (err: Error) => void,
): number {
  const timeoutMs = ms ?? defaultIdleTimeoutMs();
  connection.setTimeout(timeoutMs, () =>
    fail(Object.assign(new Error("socket idle timeout"), { code: "ETIMEDOUT" })),
  );
  return timeoutMs;
}
