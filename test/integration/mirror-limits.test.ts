// `ferry mirror` under connection pressure, with real sockets: client connections are capped
// (more are closed on arrival), idle and slowloris connections are closed after --idle-timeout,
// and upstream requests at once are capped by --upstream-requests.
import assert from "node:assert/strict";
import { createServer as createHttpServer, request, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MediaType, pushImage } from "../fixtures/images.ts";
import { type RunningRegistry, startRegistry } from "../fixtures/registry.ts";
import { removeDir, tempDir, until } from "./cli.ts";
import { get, mirrors, startMirror } from "./mirror-process.ts";

interface Client {
  socket: Socket;
  /** The server closed it (these tests never close their side first). */
  closed: boolean;
  received: string;
}

/** A raw TCP client of `host:port`; resolves once connected. */
async function open(host: string): Promise<Client> {
  const [address, port] = host.split(":") as [string, string];
  const socket = connect(Number(port), address);
  const client: Client = { socket, closed: false, received: "" };
  socket.on("data", (d: Buffer) => {
    client.received += d.toString("latin1");
  });
  socket.on("close", () => {
    client.closed = true;
  });
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return client;
}

/**
 * An HTTP relay to `target` that counts the requests in flight through it at once: from the
 * request's arrival to the response's last byte (a connection closing after that holds nothing).
 */
async function countingRelay(
  target: string,
): Promise<{ url: string; most: () => number; server: Server }> {
  const [host, port] = target.split(":") as [string, string];
  let current = 0;
  let most = 0;
  const server = createHttpServer((req, res) => {
    current++;
    most = Math.max(most, current);
    let counted = true;
    const done = () => {
      if (counted) current--;
      counted = false;
    };
    res.once("finish", done).once("close", done);
    const upstream = request(
      {
        host,
        port: Number(port),
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: false,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const relayPort = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${relayPort}`, most: () => most, server };
}

describe("ferry mirror connection limits", () => {
  let work: string;
  let registry: RunningRegistry;
  const clients: Client[] = [];

  before(async () => {
    work = await tempDir("mirror-limits");
    registry = await startRegistry();
  });

  after(async () => {
    for (const c of clients) c.socket.destroy();
    await Promise.all(mirrors.map((m) => m.stop()));
    await registry?.stop();
    await removeDir(work);
  });

  test("--max-connections: connections past the cap are closed on arrival; a freed slot serves again", async () => {
    const m = await startMirror(join(work, "store-max"), [
      "--upstream",
      registry.url,
      "--max-connections",
      "8",
    ]);
    const opened = await Promise.all(Array.from({ length: 20 }, () => open(m.host)));
    clients.push(...opened);
    await until(
      "12 connections refused",
      () => opened.filter((c) => c.closed).length >= 12 || undefined,
    );
    const kept = opened.filter((c) => !c.closed);
    assert.equal(kept.length, 8, "the first 8 are held, the rest closed");
    // One more is closed too; after one held connection ends, a new one is served.
    const extra = await open(m.host);
    clients.push(extra);
    await until("a connection past the cap closed", () => extra.closed || undefined);
    const freed = kept[0] as Client;
    freed.socket.destroy();
    await until("a held connection ended by the client", () => freed.closed || undefined);
    // The server notices the freed slot on its own: ask until it has.
    await until(
      "a request served in the freed slot",
      async () => (await get(`${m.url}/v2/`).catch(() => undefined))?.status === 200 || undefined,
    );
  });

  test("--idle-timeout: silent, slowloris and idle keep-alive connections are all closed by the server", async () => {
    const m = await startMirror(join(work, "store-idle"), [
      "--upstream",
      registry.url,
      "--idle-timeout",
      "1s",
    ]);
    // Connections that never send a byte, before any other traffic (no request timer covers them).
    const silent = await Promise.all(Array.from({ length: 5 }, () => open(m.host)));
    clients.push(...silent);
    await until("every silent connection closed", () => silent.every((c) => c.closed) || undefined);
    const slow = await Promise.all(Array.from({ length: 5 }, () => open(m.host)));
    const idle = await open(m.host);
    clients.push(...slow, idle);
    // Slowloris: a request head that never ends, one header line at a time.
    for (const c of slow) c.socket.write(`GET /v2/ HTTP/1.1\r\nHost: ${m.host}\r\n`);
    const dribble = setInterval(() => {
      for (const c of slow) if (!c.closed) c.socket.write("X-Slow: 1\r\n");
    }, 100);
    try {
      idle.socket.write(`GET /v2/ HTTP/1.1\r\nHost: ${m.host}\r\n\r\n`);
      await until(
        "the keep-alive request answered",
        () =>
          (idle.received.startsWith("HTTP/1.1 200") && idle.received.endsWith("0\r\n\r\n")) ||
          undefined,
      );
      await until(
        "every idle or slow connection closed by the server",
        () => [...slow, idle].every((c) => c.closed) || undefined,
      );
    } finally {
      clearInterval(dribble);
    }
    assert.ok(
      slow.every((c) => !c.received.startsWith("HTTP/1.1 200")),
      "no slowloris request was served",
    );
    assert.equal((await get(`${m.url}/v2/`)).status, 200, "the mirror still serves");
  });

  test("--upstream-requests: 30 cold tags at once never have more than 2 upstream requests in flight", async () => {
    const image = await pushImage(registry.host, "lib/many", "t0", {
      layers: [[{ path: "etc/many", content: "many\n" }]],
    });
    const tags = Array.from({ length: 30 }, (_, i) => `t${i}`);
    for (const tag of tags.slice(1)) {
      const put = await get(`${registry.url}/v2/lib/many/manifests/${tag}`, {
        method: "PUT",
        headers: { "content-type": image.manifestMediaType },
        body: image.manifest.toString("utf8"),
      });
      assert.equal(put.status, 201);
    }
    const relay = await countingRelay(registry.host);
    try {
      const m = await startMirror(join(work, "store-upstream"), [
        "--upstream",
        relay.url,
        "--upstream-requests",
        "2",
      ]);
      // The first request learns (once) that the upstream wants no auth: its ping runs alongside.
      const accept = { accept: [MediaType.ociManifest, MediaType.dockerManifest].join(", ") };
      assert.equal((await get(`${m.url}/v2/lib/many/tags/list`)).status, 200);
      const before = relay.most();
      const got = await Promise.all(
        tags.map((t) => get(`${m.url}/v2/lib/many/manifests/${t}`, { headers: accept })),
      );
      for (const g of got) assert.equal(g.status, 200);
      assert.ok(before <= 2, `the first request: ${before} connections at once`);
      assert.equal(relay.most(), 2, "at most 2 upstream requests at once, and both used");
    } finally {
      await new Promise<void>((resolve) => relay.server.close(() => resolve()));
    }
  });
});
