import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { embeddedAsset } from "../observe/index.ts";
import { deserializeError, type SinkReply, type SinkRequest } from "./protocol.ts";
import type { BlobSink } from "../store/index.ts";

/** worker_threads is loaded with the first worker: a pull that needs none should not pay for it. */
const requireBuiltin = createRequire(import.meta.url);

/** The key of the bundled sink-worker in the single executable (scripts/build-sea.ts). */
export const EMBEDDED_WORKER = "pull/sink-worker.js";

/** Bytes gathered before one message to a worker: fewer, larger messages and writes. */
const BATCH_BYTES = 256 * 1024;
/** Unacknowledged bytes per sink before write() asks the receiver to wait. */
const HIGH_WATER = 8 * 1024 * 1024;

interface PoolWorker {
  thread: Worker;
  sinks: Map<number, WorkerSink>;
}

/**
 * Worker threads that hash and write blobs for the main thread, started
 * lazily so a pull with nothing to fetch starts none. Spreads sha256 (the
 * first limit on CPUs without SHA instructions) over every core.
 */
export class SinkPool {
  readonly size: number;
  readonly #workers: PoolWorker[] = [];
  #nextId = 1;

  constructor(size = availableParallelism()) {
    this.size = Math.max(1, size);
  }

  createSink(): BlobSink {
    const worker = this.#pick();
    const sink = new WorkerSink(this.#nextId++, worker, (w, active) => {
      // An idle worker must not keep the process alive.
      if (active) w.thread.ref();
      else if (w.sinks.size === 0) w.thread.unref();
    });
    return sink;
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.thread.terminate()));
    this.#workers.length = 0;
  }

  #pick(): PoolWorker {
    const idle = this.#workers.find((w) => w.sinks.size === 0);
    if (idle !== undefined) return idle;
    if (this.#workers.length < this.size) return this.#spawn();
    return this.#workers.reduce((a, b) => (b.sinks.size < a.sinks.size ? b : a));
  }

  #spawn(): PoolWorker {
    const { Worker } = requireBuiltin(
      "node:worker_threads",
    ) as typeof import("node:worker_threads");
    // The single executable carries the worker as code, not as a file beside it.
    const embedded = embeddedAsset(EMBEDDED_WORKER);
    const thread =
      embedded === undefined
        ? new Worker(workerUrl())
        : new Worker(embedded.toString("utf8"), { eval: true });
    const worker: PoolWorker = { thread, sinks: new Map() };
    thread.unref();
    thread.on("message", (reply: SinkReply) => worker.sinks.get(reply.id)?.receive(reply));
    const failAll = (err: Error) => {
      for (const sink of worker.sinks.values()) sink.fail(err);
    };
    thread.on("error", failAll);
    thread.on("exit", (code) => {
      const i = this.#workers.indexOf(worker);
      if (i >= 0) this.#workers.splice(i, 1);
      if (code !== 0) failAll(new Error(`hashing worker exited with code ${code}`));
    });
    this.#workers.push(worker);
    return worker;
  }
}

class WorkerSink implements BlobSink {
  readonly #id: number;
  readonly #worker: PoolWorker;
  readonly #onActive: (w: PoolWorker, active: boolean) => void;
  #staging = new Uint8Array(BATCH_BYTES);
  #staged = 0;
  #unacked = 0;
  #error: Error | undefined;
  #waiter: { resolve(): void; reject(err: Error): void } | undefined;
  #drain: { resolve(): void; reject(err: Error): void } | undefined;

  constructor(id: number, worker: PoolWorker, onActive: (w: PoolWorker, active: boolean) => void) {
    this.#id = id;
    this.#worker = worker;
    this.#onActive = onActive;
  }

  open(path: string, digest: string, size: number, offset: number): Promise<void> {
    this.#worker.sinks.set(this.#id, this);
    this.#onActive(this.#worker, true);
    return this.#request({ id: this.#id, op: "open", path, digest, size, offset });
  }

  write(chunk: Uint8Array): undefined | Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    let offset = 0;
    while (offset < chunk.byteLength) {
      const n = Math.min(chunk.byteLength - offset, BATCH_BYTES - this.#staged);
      this.#staging.set(chunk.subarray(offset, offset + n), this.#staged);
      this.#staged += n;
      offset += n;
      if (this.#staged === BATCH_BYTES) this.#flush();
    }
    if (this.#unacked < HIGH_WATER) return undefined;
    return new Promise((resolve, reject) => {
      this.#drain = { resolve, reject };
    });
  }

  async finish(): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    this.#flush();
    try {
      await this.#request({ id: this.#id, op: "finish" });
    } finally {
      this.#close();
    }
  }

  async abort(): Promise<void> {
    if (this.#error !== undefined) {
      this.#close();
      return;
    }
    try {
      await this.#request({ id: this.#id, op: "abort" });
    } finally {
      this.#close();
    }
  }

  receive(reply: SinkReply): void {
    switch (reply.op) {
      case "ack":
        this.#unacked -= reply.length;
        if (this.#drain !== undefined && this.#unacked < HIGH_WATER / 2) {
          const d = this.#drain;
          this.#drain = undefined;
          d.resolve();
        }
        return;
      case "error":
        this.fail(deserializeError(reply.error));
        return;
      default: {
        const w = this.#waiter;
        this.#waiter = undefined;
        w?.resolve();
      }
    }
  }

  fail(err: Error): void {
    this.#error ??= err;
    const pending = [this.#waiter, this.#drain];
    this.#waiter = undefined;
    this.#drain = undefined;
    for (const p of pending) p?.reject(err);
  }

  #flush(): void {
    if (this.#staged === 0) return;
    const buffer = this.#staging.buffer as ArrayBuffer;
    const length = this.#staged;
    const msg: SinkRequest = { id: this.#id, op: "write", buffer, length };
    this.#worker.thread.postMessage(msg, [buffer]);
    this.#unacked += length;
    this.#staging = new Uint8Array(BATCH_BYTES);
    this.#staged = 0;
  }

  #request(msg: SinkRequest): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#worker.thread.postMessage(msg);
    });
  }

  #close(): void {
    this.#worker.sinks.delete(this.#id);
    this.#onActive(this.#worker, false);
  }
}

/**
 * The worker's entry: the TypeScript source when running from src/, the bundled
 * sink-worker.js beside the chunk when running from the build (scripts/build.ts).
 */
function workerUrl(): URL {
  const fromSource = import.meta.url.endsWith(".ts");
  return new URL(fromSource ? "./sink-worker.ts" : "./sink-worker.js", import.meta.url);
}
