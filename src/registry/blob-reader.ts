import { createRequire } from "node:module";
import { isIP, type OnReadOpts, connect as plainConnect, type Socket } from "node:net";
import { Readable } from "node:stream";
import type * as Tls from "node:tls";
import { FerryError, isFerryError } from "../observe/index.ts";
import type { AddressGuard } from "./address-guard.ts";
import { defaultIdleTimeoutMs } from "./deadline.ts";
import type { TlsSettings } from "./endpoint.ts";
import { networkError, redact, redirectTarget, USER_AGENT } from "./transport.ts";

/**
 * ferry's own small HTTP/1.1 client, one request per connection, over one response
 * parser (ResponseParser below). Two uses:
 * - the blob hot path (`readBlob`): a GET that receives into one reused buffer per
 *   connection (`onread`), so a download allocates nothing per chunk. node:http allocates
 *   a fresh 64 KiB Buffer per socket read: for a 200 MB blob that measured ~35,000 minor
 *   page faults and +80 MB RSS, against ~500 and +2 MB here;
 * - every plain-HTTP registry request (`requestOnce`, used by transport.ts), so commands
 *   against loopback and LAN registries never load node:http (design note 3).
 */
export interface BlobRequest {
  url: string;
  headers: Record<string, string>;
  tls?: TlsSettings | undefined;
  range?: { start: number } | undefined;
  signal?: AbortSignal | undefined;
  /** No bytes for this long (connect, head or body) fails with FERRY_TIMEOUT; default 30 s. */
  idleTimeoutMs?: number | undefined;
  /** Default 5. */
  maxRedirects?: number | undefined;
  /** Where connections may go (redirects included); unset: anywhere. */
  guard?: AddressGuard | undefined;
}

export interface BlobResponseHead {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The URL that answered, after redirects. */
  url: string;
}

export interface BlobReadResult {
  head: BlobResponseHead;
  /** Bytes passed to onData (0 when onHead returned false). */
  bodyBytes: number;
  /** Up to 64 KiB of the body of a non-2xx response that onHead declined. */
  errorBody?: string;
}

// Measured on a 200 MB loopback blob (median of 7-9 runs, wall / CPU ms): 64 KiB 398/381,
// 256 KiB 300/340, 1 MiB 254/293, 2 MiB 235/245 but reads no longer fill it; one per connection.
const BUFFER_SIZE = 1024 * 1024;
const DEFAULT_MAX_REDIRECTS = 5;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

type HeadDecision = "body" | "text" | "stop";

/**
 * Streams the body of a GET into `onData` from one reused buffer (the chunk is
 * only valid during the call). `onHead` sees the final response head first and
 * may return false to stop; then the body is not read, except up to 64 KiB of a
 * non-2xx body, returned as `errorBody`. Resolves when the body is complete.
 */
export async function readBlob(
  req: BlobRequest,
  onHead: (head: BlobResponseHead) => boolean,
  onData: (chunk: Uint8Array) => void | Promise<void>,
): Promise<BlobReadResult> {
  const maxRedirects = req.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  let url = req.url;
  let headers = lowerKeys(req.headers);
  let tls = req.tls;
  for (let hop = 0; ; hop++) {
    let location: string | undefined;
    const decide = (head: BlobResponseHead): HeadDecision => {
      const to = head.headers["location"];
      if (REDIRECTS.has(head.status) && to !== undefined && to !== "") {
        location = to;
        return "stop";
      }
      if (onHead(head)) return "body";
      return head.status >= 200 && head.status < 300 ? "stop" : "text";
    };
    const result = await exchange({ ...req, url, headers, tls }, buffer, decide, onData);
    if (location === undefined) return result;
    const next = redirectTarget(req.url, url, location, hop, maxRedirects);
    if (next.origin !== new URL(url).origin) {
      // Credentials (and a client certificate) belong to the registry, not to where it redirects.
      const { authorization: _a, cookie: _c, ...rest } = headers;
      headers = rest;
      tls = undefined;
    }
    url = next.toString();
  }
}

export interface OneShotRequest {
  method: string;
  url: string;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body?: string | Buffer | undefined;
  signal?: AbortSignal | undefined;
  tls?: TlsSettings | undefined;
  /** No bytes for this long (connect, head or body) fails with FERRY_TIMEOUT. */
  idleTimeoutMs: number;
  guard?: AddressGuard | undefined;
}

export interface OneShotResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Ends when the response does; fails with a FerryError if the connection breaks first. */
  body: Readable;
}

/**
 * Any request on its own connection (`Connection: close`), resolved with the
 * response head and a streaming body; redirects are the caller's (transport.ts
 * sends plain-HTTP requests through this: a new loopback or LAN connection costs
 * less than loading Node's HTTP client, ~7 ms of a repeat pull).
 */
export function requestOnce(req: OneShotRequest): Promise<OneShotResponse> {
  const target = parseTarget(req.url);
  const body = req.body === undefined ? undefined : Buffer.from(req.body);
  const headers =
    body === undefined ? req.headers : { ...req.headers, "content-length": String(body.length) };
  const head = requestHead(target, headers, undefined, req.method);
  const signal = req.signal;
  if (signal?.aborted) return Promise.reject(networkError(abortError(signal), req.url));
  return new Promise((resolve, reject) => {
    let response: Readable | undefined;
    let ended = false;
    const end = (err?: unknown): void => {
      if (ended) return;
      ended = true;
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      if (err === undefined) response?.push(null);
      else if (response === undefined) reject(networkError(err, req.url));
      else response.destroy(networkError(err, req.url));
    };
    const parser = new ResponseParser(
      target.host,
      (status, responseHeaders) => {
        response = new Readable({
          highWaterMark: 1024 * 1024,
          read: () => {
            socket.resume();
          },
          destroy: (err, callback) => {
            end(); // the reader gave up: close the connection
            callback(err);
          },
        });
        // A body nobody reads to the end (resume() to drain it, or left alone) must not take
        // the process down when the connection breaks: readers that iterate, pipe or listen
        // still get the error (node:http's response likewise emits it only to listeners).
        response.on("error", () => {});
        resolve({ status, headers: responseHeaders, body: response });
        return req.method !== "HEAD";
      },
      (chunk) => {
        // A copy: the socket's buffer is not ours to keep.
        if (!(response as Readable).push(Buffer.from(chunk))) socket.pause();
        return true;
      },
    );
    const onAbort = (): void => end(abortError(signal));
    const socket = connect(target, req.tls, req.guard, undefined);
    socket.on("data", (data: Buffer) => {
      if (ended) return;
      try {
        parser.push(data);
      } catch (err) {
        end(err);
        return;
      }
      if (parser.done) end();
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.setTimeout(req.idleTimeoutMs, () => {
      end(Object.assign(new Error("socket idle timeout"), { code: "ETIMEDOUT" }));
    });
    socket.on("error", (err) => end(err));
    socket.on("end", () => end(parser.endOfStream() ? undefined : truncated(req.url, parser)));
    socket.on("close", () => end(truncated(req.url, parser)));
    socket.write(head);
    if (body !== undefined) socket.write(body);
  });
}

/** One request on its own connection (`Connection: close`). */
function exchange(
  req: BlobRequest,
  buffer: Buffer,
  decide: (head: BlobResponseHead) => HeadDecision,
  onData: (chunk: Uint8Array) => void | Promise<void>,
): Promise<BlobReadResult> {
  const target = parseTarget(req.url);
  const request = requestHead(target, req.headers, req.range);
  const signal = req.signal;
  if (signal?.aborted) return Promise.reject(networkError(abortError(signal), req.url));
  return new Promise((resolve, reject) => {
    let head: BlobResponseHead | undefined;
    let mode: HeadDecision = "stop";
    let bodyBytes = 0;
    const text: Buffer[] = [];
    let textBytes = 0;
    let settled = false;
    const parser = new ResponseParser(
      target.host,
      (status, headers) => {
        head = { status, headers, url: req.url };
        mode = decide(head);
        return mode !== "stop";
      },
      (chunk) => {
        if (mode === "body") {
          const wait = onData(chunk);
          bodyBytes += chunk.length;
          if (wait instanceof Promise) {
            // The consumer asks for a pause (a worker is behind): stop reading until it catches up.
            socket.pause();
            wait.then(
              () => socket.resume(),
              (err: unknown) => finish(err),
            );
          }
          return true;
        }
        const take = Math.min(chunk.length, MAX_ERROR_BODY_BYTES - textBytes);
        text.push(Buffer.from(chunk.subarray(0, take))); // a copy: the receive buffer is reused
        textBytes += take;
        return textBytes < MAX_ERROR_BODY_BYTES;
      },
    );
    const finish = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      // An error body is best effort (the status says what went wrong); cancelling is not.
      const partialText = mode === "text" && !isFerryError(err, "FERRY_INTERRUPTED");
      if (head !== undefined && (err === undefined || partialText)) {
        const errorBody = mode === "text" ? Buffer.concat(text).toString("utf8") : undefined;
        resolve(errorBody === undefined ? { head, bodyBytes } : { head, bodyBytes, errorBody });
      } else {
        reject(err);
      }
    };
    const onAbort = (): void => finish(networkError(abortError(signal), req.url));
    const socket = connect(target, req.tls, req.guard, {
      buffer,
      callback(length, into) {
        if (settled) return false;
        try {
          parser.push((into as Buffer).subarray(0, length));
        } catch (err) {
          finish(err); // onData's own errors (size overrun, disk full) pass through unchanged
          return false;
        }
        if (parser.done) finish();
        return true;
      },
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.setTimeout(req.idleTimeoutMs ?? defaultIdleTimeoutMs(), () => {
      const cause = Object.assign(new Error("socket idle timeout"), { code: "ETIMEDOUT" });
      finish(networkError(cause, req.url));
    });
    socket.on("error", (err) => finish(networkError(err, req.url)));
    socket.on("end", () => finish(parser.endOfStream() ? undefined : truncated(req.url, parser)));
    socket.on("close", () => finish(truncated(req.url, parser)));
    socket.write(request);
  });
}

/** `onread`: receive into that buffer instead of a fresh one per read ('data' events then stop). */
function connect(
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

function parseTarget(url: string): URL {
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

function requestHead(
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

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

function abortError(signal: AbortSignal | undefined): Error {
  return Object.assign(new Error("request aborted", { cause: signal?.reason }), {
    name: "AbortError",
  });
}

/** The connection ended before the response did: transient, the caller resumes with a Range. */
function truncated(url: string, parser: ResponseParser): FerryError {
  const host = new URL(url).host;
  const { received, expected } = parser.progress;
  const what = parser.inHead
    ? "before the response head"
    : `after ${received}${expected === undefined ? "" : ` of ${expected}`} body bytes`;
  return new FerryError("FERRY_UNREACHABLE", `connection to ${host} closed ${what}`, {
    hint: "the registry or the network dropped the connection; retry",
    fields: { host, received, expected },
  });
}

type ParserState =
  | "head"
  | "length"
  | "chunk-size"
  | "chunk-data"
  | "chunk-end"
  | "trailer"
  | "close"
  | "done";

/**
 * Headers that hold one value: a repeat is ignored, as node:http does (a joined
 * "a, b" would be a wrong media type or redirect target). Content-Length is not among
 * them: repeats must agree, and #framing refuses a response whose repeats do not.
 */
const SINGLE_VALUED = new Set([
  "age",
  "content-type",
  "docker-content-digest",
  "etag",
  "expires",
  "last-modified",
  "location",
  "retry-after",
  "server",
]);

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 8 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * An HTTP/1.1 response, fed the bytes of each read as they come: head, then
 * a body framed by Content-Length, chunked encoding, or the end of the
 * connection. Any boundary may fall anywhere in a read.
 */
class ResponseParser {
  #state: ParserState = "head";
  #head: Buffer = EMPTY;
  #left = 0;
  #line = "";
  #received = 0;
  #expected: number | undefined;
  readonly #onHead: (status: number, headers: Record<string, string>) => boolean;
  readonly #onBody: (chunk: Buffer) => boolean;
  /** host[:port] that answers, for messages. */
  readonly #host: string;

  /** `onHead` returns whether to read the body; `onBody` whether to read more of it. */
  constructor(
    host: string,
    onHead: (status: number, headers: Record<string, string>) => boolean,
    onBody: (chunk: Buffer) => boolean,
  ) {
    this.#host = host;
    this.#onHead = onHead;
    this.#onBody = onBody;
  }

  #invalid(what: string): FerryError {
    return new FerryError(
      "FERRY_REGISTRY_ERROR",
      `${this.#host} sent an invalid HTTP response: ${what}`,
      {
        hint: "the registry, or a proxy or storage service between it and ferry, answered with malformed HTTP; check the registry address and whether it speaks http or https (registries.HOST.plainHttp), or report it to its operator",
        fields: { host: this.#host },
      },
    );
  }

  get done(): boolean {
    return this.#state === "done";
  }

  get inHead(): boolean {
    return this.#state === "head";
  }

  get progress(): { received: number; expected: number | undefined } {
    return { received: this.#received, expected: this.#expected };
  }

  /** At the end of the stream: whether the response is complete. */
  endOfStream(): boolean {
    if (this.#state === "close") this.#state = "done";
    return this.#state === "done";
  }

  push(data: Buffer): void {
    if (this.#state !== "head") {
      this.#body(data, 0);
      return;
    }
    const from = Math.max(0, this.#head.length - 3);
    const all = this.#head.length === 0 ? data : Buffer.concat([this.#head, data]);
    const end = headEnd(all, from);
    if (end < 0) {
      if (all.length > MAX_HEAD_BYTES) throw this.#invalid("response head too large");
      this.#head = all === data ? Buffer.from(data) : all; // the receive buffer is reused
      return;
    }
    this.#head = EMPTY;
    this.#begin(all.subarray(0, end).toString("latin1"));
    // An interim (1xx) response leaves the state at "head": parse what follows it afresh.
    if (this.#state === "head") this.push(all.subarray(end));
    else this.#body(all, end);
  }

  #begin(text: string): void {
    const lines = text.split(/\r?\n/);
    const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? "")?.[1];
    if (status === undefined) throw this.#invalid("malformed status line");
    const headers: Record<string, string> = Object.create(null);
    let last = "";
    for (const line of lines.slice(1)) {
      if (line === "") continue;
      if ((line[0] === " " || line[0] === "\t") && last !== "") {
        headers[last] += ` ${line.trim()}`; // obsolete line folding
        continue;
      }
      const colon = line.indexOf(":");
      if (colon <= 0) throw this.#invalid("malformed header line");
      last = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (headers[last] === undefined) headers[last] = value;
      else if (!SINGLE_VALUED.has(last)) headers[last] = `${headers[last]}, ${value}`;
    }
    const code = Number(status);
    if (code >= 100 && code < 200 && code !== 101) return;
    this.#state = this.#framing(code, headers);
    if (!this.#onHead(code, headers)) this.#state = "done";
  }

  #framing(status: number, headers: Record<string, string>): ParserState {
    if (status === 204 || status === 304) return "done";
    const coding = headers["transfer-encoding"];
    if (coding !== undefined) {
      // A final coding other than chunked is delimited by the end of the connection.
      return coding.split(",").at(-1)?.trim().toLowerCase() === "chunked" ? "chunk-size" : "close";
    }
    const length = headers["content-length"];
    if (length === undefined) return "close";
    const values = new Set(length.split(",").map((v) => v.trim()));
    const [only] = values;
    if (values.size !== 1 || only === undefined || !/^\d{1,15}$/.test(only)) {
      throw this.#invalid(`invalid Content-Length ${JSON.stringify(length)}`);
    }
    this.#left = Number(only);
    this.#expected = this.#left;
    return this.#left === 0 ? "done" : "length";
  }

  #body(data: Buffer, start: number): void {
    let pos = start;
    while (pos < data.length) {
      switch (this.#state) {
        case "length":
        case "chunk-data": {
          const n = Math.min(this.#left, data.length - pos);
          this.#left -= n;
          if (this.#left === 0) this.#state = this.#state === "length" ? "done" : "chunk-end";
          pos += n;
          this.#deliver(data.subarray(pos - n, pos));
          break;
        }
        case "close":
          this.#deliver(data.subarray(pos));
          pos = data.length;
          break;
        case "chunk-size":
        case "chunk-end":
        case "trailer": {
          pos = this.#scanLine(data, pos);
          if (pos < 0) return;
          const line = this.#line.endsWith("\r") ? this.#line.slice(0, -1) : this.#line;
          this.#line = "";
          this.#lineDone(line);
          break;
        }
        default:
          return; // done: bytes after the response are ignored
      }
    }
  }

  #lineDone(line: string): void {
    if (this.#state === "chunk-size") {
      const hex = /^([0-9a-fA-F]{1,13})[ \t]*(?:;.*)?$/.exec(line)?.[1];
      if (hex === undefined) throw this.#invalid(`invalid chunk size line ${JSON.stringify(line)}`);
      this.#left = Number.parseInt(hex, 16);
      this.#state = this.#left === 0 ? "trailer" : "chunk-data";
    } else if (this.#state === "chunk-end") {
      if (line !== "") throw this.#invalid("missing CRLF after chunk data");
      this.#state = "chunk-size";
    } else if (line === "") {
      this.#state = "done"; // the empty line after the trailers
    }
  }

  /** Adds bytes up to the next LF to the pending line; the index after the LF, or -1 if none. */
  #scanLine(data: Buffer, pos: number): number {
    const lf = data.indexOf(10, pos);
    this.#line += data.toString("latin1", pos, lf < 0 ? data.length : lf);
    if (this.#line.length > MAX_LINE_BYTES) throw this.#invalid("chunk line too long");
    return lf < 0 ? -1 : lf + 1;
  }

  #deliver(chunk: Buffer): void {
    this.#received += chunk.length;
    if (!this.#onBody(chunk)) this.#state = "done";
  }
}

/** Index just past the empty line ending the head (CRLF or bare LF), or -1. */
function headEnd(buf: Buffer, from: number): number {
  for (let i = buf.indexOf(10, from); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (buf[i + 1] === 10) return i + 2;
    if (buf[i + 1] === 13 && buf[i + 2] === 10) return i + 3;
  }
  return -1;
}
