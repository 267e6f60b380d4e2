import type { Socket } from "node:net";
import { FerryError } from "../observe/index.ts";
import type { AddressGuard } from "./address-guard.ts";
import type { TlsSettings } from "./endpoint.ts";
import { abortError, networkError } from "./network-error.ts";
import type { ResponseParser } from "./response-parser.ts";
import { connect, idleTimeout } from "./socket.ts";

/** One HTTP/1.1 exchange, its request already written out. */
export interface Exchange {
  /** The URL asked for, for messages. */
  readonly url: string;
  readonly target: URL;
  readonly head: string;
  readonly body?: Buffer | undefined;
  readonly tls?: TlsSettings | undefined;
  readonly guard?: AddressGuard | undefined;
  readonly signal?: AbortSignal | undefined;
  /** No bytes for this long (connect, head or body) fails with FERRY_TIMEOUT; default 30 s. */
  readonly idleTimeoutMs?: number | undefined;
}

/**
 * One request on its own connection (`Connection: close`), its response fed to `parser`
 * as it arrives: the socket and TLS, cancellation, the idle timeout and the end of the
 * stream, in one place for every use of ferry's HTTP/1.1 client. `onEnd` hears, once,
 * nothing when the response is complete, or why it is not (a FerryError; what the
 * parser's callbacks throw passes through unchanged). With `buffer`, reads land in it
 * (`onread`) instead of a fresh Buffer each.
 */
export class Connection {
  readonly socket: Socket;
  readonly #parser: ResponseParser;
  readonly #onEnd: (err?: unknown) => void;
  readonly #url: string;
  readonly #signal: AbortSignal | undefined;
  #ended = false;

  constructor(
    exchange: Exchange,
    parser: ResponseParser,
    buffer: Buffer | undefined,
    onEnd: (err?: unknown) => void,
  ) {
    this.#parser = parser;
    this.#onEnd = onEnd;
    this.#url = exchange.url;
    this.#signal = exchange.signal;
    const onread =
      buffer === undefined
        ? undefined
        : {
            buffer,
            callback: (length: number, into: Uint8Array) =>
              this.#feed((into as Buffer).subarray(0, length)),
          };
    const socket = connect(exchange.target, exchange.tls, exchange.guard, onread);
    this.socket = socket;
    if (buffer === undefined) socket.on("data", (data: Buffer) => this.#feed(data));
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    idleTimeout(socket, exchange.idleTimeoutMs, (err) => this.end(networkError(err, this.#url)));
    socket.on("error", (err) => this.end(networkError(err, this.#url)));
    socket.on("end", () => this.end(parser.endOfStream() ? undefined : this.#truncated()));
    socket.on("close", () => this.end(this.#truncated()));
    socket.write(exchange.head);
    if (exchange.body !== undefined) socket.write(exchange.body);
  }

  /** Closes the connection; the first call decides what `onEnd` hears. */
  end(err?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.socket.destroy();
    this.#onEnd(err);
  }

  readonly #onAbort = (): void => this.end(networkError(abortError(this.#signal), this.#url));

  /** Whether to keep reading (`onread` pauses the socket on false). */
  #feed(data: Buffer): boolean {
    if (this.#ended) return false;
    try {
      this.#parser.push(data);
    } catch (err) {
      this.end(err);
      return false;
    }
    if (this.#parser.done) this.end();
    return true;
  }

  /** The connection ended before the response did: transient, the caller resumes with a Range. */
  #truncated(): FerryError {
    const host = new URL(this.#url).host;
    const { received, expected } = this.#parser.progress;
    const what = this.#parser.inHead
      ? "before the response head"
      : `after ${received}${expected === undefined ? "" : ` of ${expected}`} body bytes`;
    return new FerryError("FERRY_UNREACHABLE", `connection to ${host} closed ${what}`, {
      hint: "the registry or the network dropped the connection; retry",
      fields: { host, received, expected },
    });
  }
}

/** A request cancelled before it started fails at once, naming the host. */
export function cancelledBefore(exchange: { url: string; signal?: AbortSignal | undefined }) {
  return exchange.signal?.aborted === true
    ? networkError(abortError(exchange.signal), exchange.url)
    : undefined;
}
