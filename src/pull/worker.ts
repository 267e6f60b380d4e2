import { parentPort } from "node:worker_threads";
import { createAgent } from "../registry/index.ts";
import { serializeError, type WorkerReply, type WorkerRequest } from "./protocol.ts";
import { transferBlob } from "./transfer.ts";

/** A transfer worker: fetch + hash + write run here, so a pull uses every core. */
const agent = createAgent();
const port = parentPort;
if (port === null) throw new Error("pull/worker.ts must run as a worker thread");

port.on("message", (msg: WorkerRequest) => {
  const reply = (r: WorkerReply) => port.postMessage(r);
  transferBlob(msg.job, (bytes) => reply({ id: msg.id, type: "progress", bytes }), {
    dispatcher: agent,
  }).then(
    (result) => reply({ id: msg.id, type: "result", result }),
    (err: unknown) => reply({ id: msg.id, type: "error", error: serializeError(err) }),
  );
});
