/** The agent's HTTP server: plain HTTP on the address given, closed gracefully. */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Handler } from "./status.ts";

export interface Listening {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `handler`; close() stops accepting, lets responses in flight end, then closes. */
export async function listen(handler: Handler, host: string, port: number): Promise<Listening> {
  const active = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    active.add(res);
    res.on("close", () => active.delete(res));
    handler(req, res);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      for (let i = 0; i < 100 && active.size > 0; i++) await new Promise((r) => setTimeout(r, 50));
      server.closeAllConnections();
      await closed;
    },
  };
}
