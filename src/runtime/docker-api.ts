/**
 * HTTP to the Docker Engine API over its unix socket (or plain TCP): requests, small JSON
 * answers, and the newline-delimited JSON progress stream that a pull answers with.
 */
import { Agent, type IncomingMessage, request } from "node:http";
import { isFerryError } from "../observe/index.ts";
import type { DockerEndpoint } from "./endpoint.ts";
import { connectionHint, errnoCode, interrupted, runtimeUnavailable } from "./errors.ts";
import { asFields, parseJson, stringField } from "./fields.ts";

const RUNTIME = "docker";
/** Largest non-streamed answer read (an image inspect is a few KiB). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const WHERE = "point ferry at its socket (DOCKER_HOST=unix:///path/docker.sock)";

export interface DockerRequest {
  readonly method: "GET" | "POST" | "HEAD";
  /** Path and query, e.g. "/images/create?fromImage=busybox&tag=1". */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal | undefined;
  /** Fail when the daemon sends nothing for this long; none when absent. */
  readonly idleTimeoutMs?: number;
}

export interface DockerAnswer {
  readonly status: number;
  readonly body: unknown;
}

export class DockerApi {
  readonly #endpoint: DockerEndpoint;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 16 });

  constructor(endpoint: DockerEndpoint) {
    this.#endpoint = endpoint;
  }

  get endpoint(): string {
    return this.#endpoint.text;
  }

  /** Sends a request; resolves with the response head. Connection failures are FerryErrors. */
  send(req: DockerRequest): Promise<IncomingMessage> {
    const target =
      this.#endpoint.kind === "unix"
        ? { socketPath: this.#endpoint.socketPath }
        : { host: this.#endpoint.host, port: this.#endpoint.port };
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {
          ...target,
          agent: this.#agent,
          method: req.method,
          path: req.path,
          headers: { Host: "docker", ...req.headers },
          ...(req.signal === undefined ? {} : { signal: req.signal }),
        },
        resolve,
      );
      outgoing.on("error", (err) => reject(this.failure(err, req.signal)));
      if (req.idleTimeoutMs !== undefined) {
        outgoing.setTimeout(req.idleTimeoutMs, () => {
          outgoing.destroy(Object.assign(new Error("no answer in time"), { code: "ETIMEDOUT" }));
        });
      }
      outgoing.end();
    });
  }

  /** Sends a request and reads its whole (small) JSON body; a body that is not JSON reads as its text. */
  async call(req: DockerRequest): Promise<DockerAnswer> {
    const res = await this.send(req);
    const text = await this.readText(res, req.signal);
    return {
      status: res.statusCode ?? 0,
      body: text === "" ? undefined : (parseJson(text) ?? text),
    };
  }

  /**
   * Reads a JSON progress stream to its end. Returns the first error message any object
   * carried (`errorDetail.message` or `error`), or undefined when the stream had none.
   */
  async readProgress(res: IncomingMessage, signal?: AbortSignal): Promise<string | undefined> {
    let error: string | undefined;
    let pending = "";
    const take = (line: string) => {
      const fields = asFields(parseJson(line.trim()));
      const message =
        stringField(asFields(fields?.["errorDetail"]), "message") ?? stringField(fields, "error");
      if (message !== undefined && error === undefined) error = message;
    };
    res.setEncoding("utf8");
    try {
      for await (const chunk of res) {
        pending += chunk as string;
        let newline = pending.indexOf("\n");
        while (newline >= 0) {
          take(pending.slice(0, newline));
          pending = pending.slice(newline + 1);
          newline = pending.indexOf("\n");
        }
      }
    } catch (err) {
      throw this.failure(err, signal);
    }
    if (pending.trim() !== "") take(pending);
    return error;
  }

  async readText(res: IncomingMessage, signal?: AbortSignal): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES) {
          res.destroy();
          break;
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      throw this.failure(err, signal);
    }
    return Buffer.concat(chunks).toString("utf8");
  }

  /** The daemon's `{"message": …}` error text of an answer, or its status. */
  static messageOf(answer: DockerAnswer): string {
    const text = stringField(asFields(answer.body), "message");
    if (text !== undefined) return text;
    return typeof answer.body === "string" && answer.body.trim() !== ""
      ? answer.body.trim()
      : `HTTP ${answer.status}`;
  }

  failure(err: unknown, signal?: AbortSignal): Error {
    if (isFerryError(err)) return err;
    if (signal?.aborted) return interrupted(RUNTIME, err);
    const code = errnoCode(err);
    const reason = code === undefined ? String((err as Error).message ?? err) : describe(code, err);
    return runtimeUnavailable(RUNTIME, this.#endpoint.text, reason, {
      hint: connectionHint(code, "the Docker daemon", WHERE),
      cause: err,
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

function describe(code: string, err: unknown): string {
  if (code === "ENOENT") return "no socket there (ENOENT)";
  if (code === "ECONNREFUSED") return "nothing listens there (ECONNREFUSED)";
  if (code === "EACCES") return "permission denied (EACCES)";
  if (code === "ETIMEDOUT") return "no answer in time";
  if (code === "ECONNRESET") return "the daemon closed the connection (ECONNRESET)";
  return `${(err as Error).message ?? code}`;
}
