import { FerryError } from "../observe/index.ts";

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
export class ResponseParser {
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
