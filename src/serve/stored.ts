import type { FileHandle } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { type BlobHeaders, refuseRange, writeBlobHead } from "./head.ts";
import { parseRange } from "./range.ts";
import { type Pace, sendFileRange } from "./send-file.ts";

export interface BlobRequest {
  method: string;
  /** The request's Range header. */
  range: string | undefined;
  headers: BlobHeaders;
  /** The sender's upload cap. */
  pace?: Pace;
  /** Hears each chunk handed to the socket. */
  onSent?: (bytes: number) => void;
}

/**
 * Answers for a stored (verified) blob read from `file`: 200, 206 or 416 by the Range
 * policy, a HEAD without a body. Returns the body bytes sent; a receiver that went away
 * leaves the response destroyed, never ended short.
 */
export async function serveStoredBlob(
  res: ServerResponse,
  file: FileHandle,
  request: BlobRequest,
): Promise<number> {
  const size = (await file.stat()).size;
  const span = parseRange(request.range, size);
  if (span === "unsatisfiable") {
    refuseRange(res, request.headers, size);
    return 0;
  }
  writeBlobHead(res, request.headers, span, size);
  if (request.method === "HEAD") {
    res.end();
    return 0;
  }
  const [start, end] = span ?? [0, size];
  const reached = await sendFileRange(res, file, start, end, request.pace, request.onSent);
  if (reached === end) res.end();
  else res.destroy();
  return reached - start;
}
