import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { deserializeError, type WorkerReply, type WorkerRequest } from "./protocol.ts";
import type { ProgressListener, TransferJob, TransferResult } from "./transfer.ts";

interface Pending {
  resolve(result: TransferResult): void;
  reject(err: Error): void;
  onProgress: ProgressListener;
  worker: PoolWorker;
}

interface PoolWorker {
  thread: Worker;
  active: number;
}

/**
 * Worker threads that run blob transfers (HTTP receive, sha256, file write),
 * started lazily so a pull with nothing to fetch starts none.
 */
export class TransferPool {
  readonly size: number;
  readonly #workers: PoolWorker[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(size = availableParallelism()) {
    this.size = Math.max(1, size);
  }

  run(job: TransferJob, onProgress: ProgressListener): Promise<TransferResult> {
    const worker = this.#pick();
    const id = this.#nextId++;
    worker.active++;
    worker.thread.ref();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress, worker });
      const msg: WorkerRequest = { id, job };
      worker.thread.postMessage(msg);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.thread.terminate()));
    this.#workers.length = 0;
  }

  #pick(): PoolWorker {
    const idle = this.#workers.find((w) => w.active === 0);
    if (idle !== undefined) return idle;
    if (this.#workers.length < this.size) return this.#spawn();
    return this.#workers.reduce((a, b) => (b.active < a.active ? b : a));
  }

  #spawn(): PoolWorker {
    const thread = new Worker(new URL("./worker.ts", import.meta.url));
    const worker: PoolWorker = { thread, active: 0 };
    thread.unref();
    thread.on("message", (reply: WorkerReply) => {
      const p = this.#pending.get(reply.id);
      if (p === undefined) return;
      if (reply.type === "progress") {
        p.onProgress(reply.bytes);
        return;
      }
      this.#pending.delete(reply.id);
      p.worker.active--;
      // An idle worker must not keep the process alive.
      if (p.worker.active === 0) p.worker.thread.unref();
      if (reply.type === "result") p.resolve(reply.result);
      else p.reject(deserializeError(reply.error));
    });
    thread.on("error", (err) => this.#failAll(worker, err));
    thread.on("exit", (code) => {
      const i = this.#workers.indexOf(worker);
      if (i >= 0) this.#workers.splice(i, 1);
      if (code !== 0) this.#failAll(worker, new Error(`transfer worker exited with code ${code}`));
    });
    this.#workers.push(worker);
    return worker;
  }

  #failAll(worker: PoolWorker, err: Error): void {
    for (const [id, p] of this.#pending) {
      if (p.worker === worker) {
        this.#pending.delete(id);
        p.reject(err);
      }
    }
  }
}
