import type { ServerResponse } from "node:http";

/** An error in the distribution spec's format; it knows its status and renders itself. */
export class DistributionError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { detail?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  write(res: ServerResponse, method: string): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify({
      errors: [{ code: this.code, message: this.message, detail: this.detail ?? null }],
    });
    res.writeHead(this.status, {
      ...this.headers,
      "content-type": "application/json; charset=utf-8",
      "content-length": String(Buffer.byteLength(body)),
      "docker-distribution-api-version": "registry/2.0",
    });
    res.end(method === "HEAD" ? undefined : body);
  }
}
