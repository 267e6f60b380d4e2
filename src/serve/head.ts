import type { ServerResponse } from "node:http";
import type { ByteSpan } from "./range.ts";

/** What every answer for a blob carries, whoever serves it (digest, accept-ranges, ...). */
export type BlobHeaders = Readonly<Record<string, string>>;

/** 200 with the whole blob, or 206 with `span` of it. */
export function writeBlobHead(
  res: ServerResponse,
  headers: BlobHeaders,
  span: ByteSpan | undefined,
  size: number,
): void {
  const [start, end] = span ?? [0, size];
  const head = {
    ...headers,
    "content-type": "application/octet-stream",
    "content-length": String(end - start),
  };
  if (span === undefined) res.writeHead(200, head);
  else res.writeHead(206, { ...head, "content-range": `bytes ${start}-${end - 1}/${size}` });
}

/** 416 for a range the blob does not reach, saying how long the blob is. */
export function refuseRange(res: ServerResponse, headers: BlobHeaders, size: number): void {
  res.writeHead(416, { ...headers, "content-range": `bytes */${size}` }).end();
}
