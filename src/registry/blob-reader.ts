import { Readable } from "node:stream";
import { isFerryError } from "../observe/index.ts";
import type { AddressGuard } from "./address-guard.ts";
import { cancelledBefore, Connection } from "./connection.ts";
import type { TlsSettings } from "./endpoint.ts";
import { lowerKeys } from "./headers.ts";
import { followRedirects, redirection } from "./redirect.ts";
import { parseTarget, requestHead } from "./request-head.ts";
import { ResponseParser } from "./response-parser.ts";

/**
 * ferry's own small HTTP/1.1 client, one request per connection (connection.ts), over
 * one response parser (response-parser.ts). Two uses:
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
const MAX_ERROR_BODY_BYTES = 64 * 1024;

type HeadDecision = "body" | "text" | "stop";

/**
 * Streams the body of a GET into `onData` from one reused buffer (the chunk is
 * only valid during the call). `onHead` sees the final response head first and
 * may return false to stop; then the body is not read, except up to 64 KiB of a
 * non-2xx body, returned as `errorBody`. Resolves when the body is complete.
 */
export function readBlob(
  req: BlobRequest,
  onHead: (head: BlobResponseHead) => boolean,
  onData: (chunk: Uint8Array) => void | Promise<void>,
): Promise<BlobReadResult> {
  const buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  const decide = (head: BlobResponseHead): HeadDecision => {
    if (redirection(head.status, head.headers["location"]) !== undefined) return "stop";
    if (onHead(head)) return "body";
    return head.status >= 200 && head.status < 300 ? "stop" : "text";
  };
  const follow = followRedirects(
    (hop: BlobRequest) => exchange(hop, buffer, decide, onData),
    (result) => redirection(result.head.status, result.head.headers["location"]),
    req.maxRedirects,
  );
  return follow({ ...req, headers: lowerKeys(req.headers) });
}

export interface OneShotRequest {
  method: string;
  url: string;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body?: string | Buffer | undefined;
  signal?: AbortSignal | undefined;
  tls?: TlsSettings | undefined;
  /** No bytes for this long (connect, head or body) fails with FERRY_TIMEOUT; default 30 s. */
  idleTimeoutMs?: number | undefined;
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
  const cancelled = cancelledBefore(req);
  if (cancelled !== undefined) return Promise.reject(cancelled);
  return new Promise((resolve, reject) => {
    let response: Readable | undefined;
    const parser = new ResponseParser(
      target.host,
      (status, responseHeaders) => {
        response = new Readable({
          highWaterMark: 1024 * 1024,
          read: () => {
            connection.socket.resume();
          },
          destroy: (err, callback) => {
            connection.end(); // the reader gave up: close the connection
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
        if (!(response as Readable).push(Buffer.from(chunk))) connection.socket.pause();
        return true;
      },
    );
    const connection = new Connection({ ...req, target, head, body }, parser, undefined, (err) => {
      if (err === undefined) response?.push(null);
      else if (response === undefined) reject(err);
      else response.destroy(err as Error);
    });
  });
}

/** One GET on its own connection, its body received into `buffer`. */
function exchange(
  req: BlobRequest,
  buffer: Buffer,
  decide: (head: BlobResponseHead) => HeadDecision,
  onData: (chunk: Uint8Array) => void | Promise<void>,
): Promise<BlobReadResult> {
  const target = parseTarget(req.url);
  const head = requestHead(target, req.headers, req.range);
  const cancelled = cancelledBefore(req);
  if (cancelled !== undefined) return Promise.reject(cancelled);
  return new Promise((resolve, reject) => {
    let answer: BlobResponseHead | undefined;
    let mode: HeadDecision = "stop";
    let bodyBytes = 0;
    const text: Buffer[] = [];
    let textBytes = 0;
    const parser = new ResponseParser(
      target.host,
      (status, headers) => {
        answer = { status, headers, url: req.url };
        mode = decide(answer);
        return mode !== "stop";
      },
      (chunk) => {
        if (mode === "body") {
          const wait = onData(chunk);
          bodyBytes += chunk.length;
          if (wait instanceof Promise) {
            // The consumer asks for a pause (a worker is behind): stop reading until it catches up.
            connection.socket.pause();
            wait.then(
              () => connection.socket.resume(),
              (err: unknown) => connection.end(err),
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
    const connection = new Connection({ ...req, target, head }, parser, buffer, (err) => {
      // An error body is best effort (the status says what went wrong); cancelling is not.
      const partialText = mode === "text" && !isFerryError(err, "FERRY_INTERRUPTED");
      if (answer !== undefined && (err === undefined || partialText)) {
        const errorBody = mode === "text" ? Buffer.concat(text).toString("utf8") : undefined;
        resolve(
          errorBody === undefined
            ? { head: answer, bodyBytes }
            : { head: answer, bodyBytes, errorBody },
        );
      } else {
        reject(err);
      }
    });
  });
}
