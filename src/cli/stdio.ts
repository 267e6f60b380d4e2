import { FerryError } from "../observe/index.ts";

/** Errors that mean the reader of the pipe has gone (`ferry pull --json | head -1`). */
const READER_GONE = new Set(["EPIPE", "ECONNRESET", "ERR_STREAM_DESTROYED"]);

/**
 * stdout or stderr, whose reader may go away before ferry is done. Its error is handled here, so
 * no unhandled 'error' event ends the process with a stack trace: text written after it is
 * dropped and the work goes on; bytes that are the command's product fail with
 * FERRY_OUTPUT_CLOSED.
 */
export class ProcessStream {
  readonly stream: NodeJS.WriteStream;
  readonly #name: string;
  #closed = false;

  constructor(stream: NodeJS.WriteStream, name: string) {
    this.stream = stream;
    this.#name = name;
    stream.on("error", () => {
      this.#closed = true;
    });
  }

  get closed(): boolean {
    return this.#closed || this.stream.destroyed;
  }

  /** Text for the user: dropped once the reader has gone. */
  write(text: string): void {
    if (!this.closed) this.stream.write(text);
  }

  /** Bytes that are the command's product (`lazy cat`), `what` naming them for the error. */
  writeBytes(bytes: Uint8Array, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(outputClosed(this.#name, what));
      this.stream.write(bytes, (err) =>
        err ? reject(readerGone(err) ? outputClosed(this.#name, what, err) : err) : resolve(),
      );
    });
  }
}

function readerGone(err: unknown): boolean {
  return READER_GONE.has((err as { code?: string } | null)?.code ?? "");
}

function outputClosed(stream: string, what: string, cause?: unknown): FerryError {
  return new FerryError(
    "FERRY_OUTPUT_CLOSED",
    `${stream} was closed before ${what} was written in full`,
    {
      hint: "the program reading ferry's output stopped early; let it read to the end, or write to a file",
      cause,
    },
  );
}

// Made at start-up, so the streams' errors are handled before anything is written.
export const stdout = new ProcessStream(process.stdout, "stdout");
export const stderr = new ProcessStream(process.stderr, "stderr");
