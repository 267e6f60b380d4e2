import { parentPort } from "node:worker_threads";
import { serializeError, type SinkReply, type SinkRequest } from "./protocol.ts";
import { LocalSink } from "../store/index.ts";

/** Runs LocalSinks for the main thread: sha256 and file writes on another core. */
const port = parentPort;
if (port === null) throw new Error("pull/sink-worker.ts must run as a worker thread");

const sinks = new Map<number, { sink: LocalSink; failed: boolean }>();
const reply = (r: SinkReply) => port.postMessage(r);

port.on("message", (msg: SinkRequest) => {
  switch (msg.op) {
    case "open": {
      const entry = { sink: new LocalSink(), failed: false };
      sinks.set(msg.id, entry);
      entry.sink.open(msg.path, msg.digest, msg.size, msg.offset).then(
        () => reply({ id: msg.id, op: "opened" }),
        (err: unknown) => {
          entry.failed = true;
          reply({ id: msg.id, op: "error", error: serializeError(err) });
        },
      );
      return;
    }
    case "write": {
      const entry = sinks.get(msg.id);
      if (entry === undefined || entry.failed) return;
      try {
        entry.sink.write(new Uint8Array(msg.buffer, 0, msg.length));
        reply({ id: msg.id, op: "ack", length: msg.length });
      } catch (err) {
        entry.failed = true;
        entry.sink
          .discard()
          .finally(() => reply({ id: msg.id, op: "error", error: serializeError(err) }));
      }
      return;
    }
    case "finish":
    case "abort": {
      const entry = sinks.get(msg.id);
      sinks.delete(msg.id);
      if (entry === undefined || entry.failed) return;
      const done = msg.op === "finish" ? entry.sink.finish() : entry.sink.abort();
      done.then(
        () => reply({ id: msg.id, op: "done" }),
        (err: unknown) => reply({ id: msg.id, op: "error", error: serializeError(err) }),
      );
      return;
    }
  }
});
