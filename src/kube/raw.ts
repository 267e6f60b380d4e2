/**
 * A GET whose answer is kept as the API server's JSON, not passed through client-node's model
 * classes: those turn timestamps into Dates (`timeAdded` comes back as `…T00:00:00.000Z` where
 * the server stored `…T00:00:00Z`) and drop fields they do not know, so a JSON-patch `test`
 * built from them never matches what the server holds.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

const MAX_BYTES = 16 * 1024 * 1024;

/** An API answer other than 2xx; `statusCode` is what apiStatus() reads. */
export class RawApiError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.name = "RawApiError";
    this.statusCode = statusCode;
  }
}

/** GET `path` (e.g. /api/v1/nodes/node-1) and parse it; throws RawApiError on a non-2xx answer. */
export async function getRawJson(config: KubeConfig, path: string): Promise<unknown> {
  const cluster = config.getCurrentCluster();
  if (cluster === null) throw new Error("no Kubernetes cluster configured");
  const url = new URL(cluster.server.replace(/\/+$/, "") + path);
  const options: RequestOptions = { method: "GET", headers: { accept: "application/json" } };
  await config.applyToHTTPSOptions(options);
  const send = url.protocol === "http:" ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BYTES) {
          req.destroy(new Error(`GET ${path}: answer over ${MAX_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          let message = text.slice(0, 500);
          try {
            message = (JSON.parse(text) as { message?: string }).message ?? message;
          } catch {}
          reject(new RawApiError(status, `GET ${path}: ${message} (HTTP ${status})`));
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch (error) {
          reject(error);
        }
      });
    });
    req.on("error", reject);
    req.end();
  });
}
