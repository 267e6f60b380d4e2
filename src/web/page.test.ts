import assert from "node:assert/strict";
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createStatusPage, type StatusPage } from "./page.ts";
import { until } from "../../test/fixtures/until.ts";

interface Answer {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}

function get(url: string, options: { method?: string; headers?: Record<string, string> } = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? "GET", headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

interface Frame {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

/** Reads server-sent events until `done` says enough (or the stream ends). */
function events(url: string, done: (frames: readonly Frame[]) => boolean) {
  return new Promise<{ frames: Frame[]; ended: boolean; headers: IncomingMessage["headers"] }>(
    (resolve, reject) => {
      const req = request(url, { agent: false }, (res) => {
        const frames: Frame[] = [];
        let buffer = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffer += chunk;
          let end = buffer.indexOf("\n\n");
          while (end >= 0) {
            const frame = /^event: (\w+)\ndata: (.*)$/m.exec(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (frame)
              frames.push({ event: frame[1] as string, data: JSON.parse(frame[2] as string) });
            end = buffer.indexOf("\n\n");
          }
          if (done(frames)) {
            req.destroy();
            resolve({ frames, ended: false, headers: res.headers });
          }
        });
        res.on("end", () => resolve({ frames, ended: true, headers: res.headers }));
      });
      req.on("error", reject);
      req.end();
    },
  );
}

describe("status page route", () => {
  let dir: string;
  let server: Server;
  let base: string;
  let page: StatusPage;
  let doc: Record<string, unknown> = {
    node: "n1",
    images: [],
    webhooks: { secret: "s3cr3t-value" },
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-web-"));
    const assets = join(dir, "web");
    await mkdir(join(assets, "assets"), { recursive: true });
    await writeFile(
      join(assets, "index.html"),
      "<!doctype html><title>ferry</title><main><!--ferry:snapshot--></main>",
    );
    await writeFile(join(assets, "assets", "main-AB12.js"), "console.log(1)");
    await writeFile(join(assets, "assets", "main-AB12.css"), "body{}");
    await writeFile(join(dir, "outside.txt"), "not for the page");
    page = createStatusPage({
      status: () => ({ ...doc, time: new Date().toISOString() }),
      assetsDir: assets,
      updateEveryMs: 20,
      maxStreams: 2,
    });
    server = createServer((req, res) => {
      if (!page.handle(req, res)) res.writeHead(404).end("the caller's 404");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    page.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it("serves index.html with the current document rendered in, never cached, with a strict content security policy", async () => {
    doc = { node: "n1", images: [{ image: "r.test/app:1" }], webhooks: { secret: "s3cr3t-value" } };
    const r = await get(`${base}/`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "text/html; charset=utf-8");
    assert.equal(r.headers["cache-control"], "no-store");
    assert.equal(r.headers["x-content-type-options"], "nosniff");
    assert.match(
      String(r.headers["content-security-policy"]),
      /default-src 'none'; script-src 'self'/,
    );
    assert.match(r.body, /<title>ferry<\/title>/);
    assert.match(
      r.body,
      /<section id="snapshot"[\s\S]*<th scope="row"><span class="image-name">r\.test\/app:1/,
    );
    const data = /<script type="application\/json" id="initial-status">(.*?)<\/script>/.exec(
      r.body,
    );
    assert.equal((JSON.parse(data?.[1] ?? "{}") as { node?: string }).node, "n1");
    assert.doesNotMatch(r.body, /s3cr3t-value/);
    const head = await get(`${base}/index.html`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
  });

  it("serves hashed assets as immutable, with their content types; HEAD has no body", async () => {
    const js = await get(`${base}/assets/main-AB12.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers["content-type"], "text/javascript; charset=utf-8");
    assert.equal(js.headers["cache-control"], "public, max-age=31536000, immutable");
    assert.equal(js.body, "console.log(1)");
    const css = await get(`${base}/assets/main-AB12.css`, { method: "HEAD" });
    assert.equal(css.headers["content-type"], "text/css; charset=utf-8");
    assert.equal(css.headers["content-length"], "6");
    assert.equal(css.body, "");
  });

  it("serves nothing outside the built assets, however the path is spelled", async () => {
    for (const path of [
      "/assets/../outside.txt",
      "/assets/%2e%2e/outside.txt",
      "/assets/..%2f..%2foutside.txt",
      "/assets/%2e%2e%2f%2e%2e%2foutside.txt",
      "/assets/.hidden",
      "/assets/",
      "/assets/sub/main-AB12.js",
      "/assets/main-AB12.js%00",
    ]) {
      const r = await get(`${base}${path}`);
      assert.notEqual(r.status, 200, path);
      assert.doesNotMatch(r.body, /not for the page/, path);
    }
  });

  it("leaves other paths to the caller and refuses writes", async () => {
    assert.equal((await get(`${base}/status`)).body, "the caller's 404");
    const post = await get(`${base}/`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, "GET, HEAD");
  });

  it("streams the status document as server-sent events, secrets redacted; unchanged documents as a small alive event", async () => {
    doc = { node: "n1", images: [], webhooks: { secret: "s3cr3t-value" } };
    const { frames, headers } = await events(`${base}/events`, (frames) => {
      if (frames.length === 1) doc = { ...doc, node: "n2" };
      const changed = frames.findIndex((f) => f.event === "status" && f.data.node === "n2");
      return changed >= 0 && frames.slice(changed).some((f) => f.event === "alive");
    });
    assert.equal(headers["content-type"], "text/event-stream; charset=utf-8");
    assert.equal(headers["cache-control"], "no-store");
    assert.doesNotMatch(JSON.stringify(frames), /s3cr3t-value/);
    assert.equal(frames[0]?.event, "status");
    assert.deepEqual(frames[0]?.data.webhooks, { secret: "[redacted]" });
    const alive = frames.find((f) => f.event === "alive");
    assert.match(String(alive?.data.time), /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(Object.keys(alive?.data ?? {}), ["time"]);
  });

  it("limits open streams and ends them all on close()", async () => {
    const first = events(`${base}/events`, () => false);
    const second = events(`${base}/events`, () => false);
    // Both are open once the third is refused (the limit is two).
    await until(
      "a third stream refused with 503",
      async () => (await get(`${base}/events`)).status === 503,
      10_000,
      { everyMs: 20 },
    );
    page.close();
    const ended = await Promise.all([first, second]);
    assert.deepEqual(
      ended.map((e) => e.ended),
      [true, true],
    );
    assert.ok(ended.every((e) => e.frames[0]?.event === "status"));
  });
});

describe("status page before the front end is built", () => {
  it("answers 503 with the command that builds it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-web-empty-"));
    const page = createStatusPage({ status: () => ({}), assetsDir: dir });
    const server = createServer((req, res) => void page.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const r = await get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      assert.equal(r.status, 503);
      assert.match(r.body, /npm run build:web/);
    } finally {
      page.close();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("compressed assets", () => {
  it("sends gzip only to clients that accept it, and says it varies", async () => {
    const { gunzipSync } = await import("node:zlib");
    const dir = await mkdtemp(join(tmpdir(), "ferry-web-gzip-"));
    await mkdir(join(dir, "assets"), { recursive: true });
    await writeFile(join(dir, "index.html"), "<!doctype html>");
    const script = `console.log(${JSON.stringify("status ".repeat(2000))});`;
    await writeFile(join(dir, "assets", "main-GZ.js"), script);
    const page = createStatusPage({ status: () => ({}), assetsDir: dir });
    const server = createServer((req, res) => void page.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const at = `http://127.0.0.1:${(server.address() as AddressInfo).port}/assets/main-GZ.js`;
    const raw = (headers: Record<string, string>) =>
      new Promise<{ headers: IncomingMessage["headers"]; body: Buffer }>((resolve, reject) => {
        request(at, { headers, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        })
          .on("error", reject)
          .end();
      });
    try {
      const zipped = await raw({ "accept-encoding": "br, gzip;q=0.8" });
      assert.equal(zipped.headers["content-encoding"], "gzip");
      assert.equal(zipped.headers.vary, "accept-encoding");
      assert.ok(zipped.body.length < script.length / 10);
      assert.equal(gunzipSync(zipped.body).toString(), script);
      for (const refusal of [
        {},
        { "accept-encoding": "gzip;q=0, br" },
        { "accept-encoding": "identity" },
      ] as Record<string, string>[]) {
        const plain = await raw(refusal);
        assert.equal(plain.headers["content-encoding"], undefined, JSON.stringify(refusal));
        assert.equal(plain.body.toString(), script);
      }
    } finally {
      page.close();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
