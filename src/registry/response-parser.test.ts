import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { isFerryError } from "../observe/index.ts";
import { type BlobReadResult, readBlob } from "./blob-reader.ts";
import { ResponseParser } from "./response-parser.ts";

interface Outcome {
  head: { status: number; headers: Record<string, string> } | undefined;
  body: Buffer;
  /** Whether the response was complete when the stream ended. */
  complete: boolean;
}

/** Feeds `pieces` as a connection would (nothing after the response is done), then ends the stream. */
function parse(pieces: readonly Uint8Array[]): Outcome {
  let head: Outcome["head"];
  const body: Buffer[] = [];
  const parser = new ResponseParser(
    "registry.test",
    (status, headers) => {
      head = { status, headers: { ...headers } };
      return true;
    },
    (chunk) => {
      body.push(Buffer.from(chunk)); // a copy: the chunk is a view of the read
      return true;
    },
  );
  for (const piece of pieces) {
    if (parser.done) break;
    parser.push(Buffer.from(piece));
  }
  return { head, body: Buffer.concat(body), complete: parser.endOfStream() };
}

/** `bytes` cut at `cuts` (offsets, in any order, repeats allowed). */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const to of [...at, bytes.length]) {
    pieces.push(bytes.subarray(from, to));
    from = to;
  }
  return pieces;
}

/** Any error but the parser's own typed one fails the property. */
function typedOnly(run: () => unknown): void {
  try {
    run();
  } catch (err) {
    assert.ok(isFerryError(err, "FERRY_REGISTRY_ERROR"), `untyped error: ${String(err)}`);
    assert.match(err.message, /^registry\.test sent an invalid HTTP response: /);
  }
}

// ---- generators of valid responses ----

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,11}$/);
const headerName = token.filter(
  (n) => !["content-length", "transfer-encoding"].includes(n.toLowerCase()),
);
const headerValue = fc.stringMatching(/^[!-~](?:[ !-~]{0,20}[!-~])?$/);
const header = fc.tuple(headerName, headerValue);
const eol = fc.constantFrom("\r\n", "\n");

interface ValidResponse {
  bytes: Uint8Array;
  status: number;
  body: Buffer;
}

/** A chunked encoding of `body`: chunk sizes, extensions and trailers of every shape. */
const chunked = (body: Uint8Array) =>
  fc
    .tuple(
      fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 12 }),
      fc.boolean(),
      fc.array(header, { maxLength: 2 }),
      fc.boolean(),
    )
    .map(([sizes, extension, trailers, upper]) => {
      const parts: Buffer[] = [];
      let at = 0;
      for (const size of [...sizes, body.length]) {
        if (at >= body.length) break;
        const piece = body.subarray(at, Math.min(body.length, at + size));
        at += piece.length;
        const hex = piece.length.toString(16);
        parts.push(Buffer.from(`${upper ? hex.toUpperCase() : hex}${extension ? ";x=1" : ""}\r\n`));
        parts.push(Buffer.from(piece), Buffer.from("\r\n"));
      }
      parts.push(Buffer.from(`0\r\n${trailers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`));
      return Buffer.concat(parts);
    });

const validResponse: fc.Arbitrary<ValidResponse> = fc
  .tuple(
    fc.constantFrom(200, 201, 206, 301, 307, 400, 401, 404, 429, 500, 503),
    fc.array(header, { maxLength: 6 }),
    fc.uint8Array({ maxLength: 4000 }),
    fc.constantFrom("length", "chunked", "close"),
    fc.boolean(),
    eol,
  )
  .chain(([status, headers, body, framing, interim, end]) =>
    (framing === "chunked" ? chunked(body) : fc.constant(Buffer.from(body))).map((encoded) => {
      const framingHeader =
        framing === "length"
          ? `Content-Length: ${body.length}${end}`
          : framing === "chunked"
            ? `Transfer-Encoding: chunked${end}`
            : "";
      const head =
        (interim ? `HTTP/1.1 100 Continue${end}${end}` : "") +
        `HTTP/1.1 ${status} Whatever${end}` +
        headers.map(([n, v]) => `${n}: ${v}${end}`).join("") +
        framingHeader +
        end;
      // Bytes after a delimited response belong to nothing and must be ignored.
      const after = framing === "close" ? "" : "HTTP/1.1 500 not this one\r\n\r\n";
      return {
        bytes: Buffer.concat([Buffer.from(head, "latin1"), encoded, Buffer.from(after)]),
        status,
        body: Buffer.from(body),
      };
    }),
  );

const cuts = fc.array(fc.nat(), { maxLength: 40 });

describe("ResponseParser (properties)", () => {
  it("reads any valid response the same however the bytes are cut into reads", () => {
    fc.assert(
      fc.property(validResponse, cuts, (response, at) => {
        const whole = parse([response.bytes]);
        assert.equal(whole.head?.status, response.status);
        assert.deepEqual(whole.body, response.body);
        assert.equal(whole.complete, true);
        assert.deepEqual(parse(split(response.bytes, at)), whole);
      }),
    );
  });

  it("every read cut into single bytes still gives the same response", () => {
    fc.assert(
      fc.property(validResponse, (response) => {
        const bytes = [...response.bytes].map((b) => Uint8Array.of(b));
        assert.deepEqual(parse(bytes), parse([response.bytes]));
      }),
      { numRuns: 30 },
    );
  });

  it("arbitrary bytes end in a response, or the parser's typed error, and nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), cuts, (bytes, at) => {
        typedOnly(() => parse(split(bytes, at)));
      }),
      { numRuns: 300 },
    );
  });

  it("a valid head followed by arbitrary bytes (a body, chunks, trailers): the same", () => {
    const head = fc.constantFrom(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 100 Continue\r\n\r\n",
    );
    const tail = fc.oneof(
      fc.uint8Array({ maxLength: 2000 }),
      // Text shaped like chunk framing, so the chunk states are reached often.
      fc
        .array(fc.constantFrom("a", "0", "F", ";", "\r\n", "\n", " ", "\t", "x", "1", ":"), {
          maxLength: 200,
        })
        .map((parts) => Buffer.from(parts.join(""))),
    );
    fc.assert(
      fc.property(head, tail, cuts, (h, t, at) => {
        typedOnly(() => parse(split(Buffer.concat([Buffer.from(h), t]), at)));
      }),
      { numRuns: 300 },
    );
  });
});

describe("readBlob over arbitrary bytes (property)", () => {
  let server: Server;
  let url: string;
  let answer: Uint8Array = new Uint8Array();
  before(async () => {
    // A raw TCP server on loopback: it writes this run's bytes, then closes the connection.
    server = createServer((socket) => {
      socket.on("error", () => {});
      socket.once("data", () => socket.end(answer));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/app/blobs/x`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("always settles, with a result or a typed error, once the connection closes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 2000 }),
          validResponse.map((r) => r.bytes),
          validResponse.chain((r) =>
            fc.nat({ max: r.bytes.length }).map((n) => r.bytes.subarray(0, n)),
          ),
        ),
        async (bytes) => {
          answer = bytes;
          let result: BlobReadResult | undefined;
          let error: unknown;
          try {
            // No redirect is followed: a fuzzed Location must lead nowhere.
            result = await readBlob(
              { url, headers: {}, maxRedirects: 0 },
              () => true,
              () => {},
            );
          } catch (err) {
            error = err;
          }
          if (result === undefined) {
            assert.ok(
              isFerryError(error, "FERRY_REGISTRY_ERROR") ||
                isFerryError(error, "FERRY_UNREACHABLE"),
              `untyped error: ${String(error)}`,
            );
          } else {
            assert.equal(typeof result.head.status, "number");
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
