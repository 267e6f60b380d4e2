import { Readable } from "node:stream";
import { FerryError, isFerryError } from "../observe/index.ts";
import type { AddressGuard } from "./address-guard.ts";
import { defaultIdleTimeoutMs } from "./deadline.ts";
import type { TlsSettings } from "./endpoint.ts";
import { lowerKeys } from "./headers.ts";
import { networkError } from "./network-error.ts";
import { redirectTarget } from "./redirect.ts";
import { ResponseParser } from "./response-parser.ts";
import { abortError, connect, parseTarget, requestHead } from "./socket.ts";

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
