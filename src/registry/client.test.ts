import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { RegistryClient } from "./client.ts";

const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {
    mediaType: "application/vnd.oci.image.config.v1+json",
    digest: `sha256:${"0".repeat(64)}`,
    size: 2,
  },
  layers: [],
});

interface Seen {
  path: string;
  authorized: boolean;
}

/** A registry on loopback whose answers to anonymous clients are configurable. */
async function registry(
  wantsAuth: boolean,
): Promise<{ server: Server; host: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const expected = `Basic ${Buffer.from("alice:secret").toString("base64")}`;
  const server = createServer((req, res) => {
    const authorized = req.headers.authorization === expected;
    seen.push({ path: req.url ?? "", authorized });
    if (wantsAuth && !authorized) {
      if (req.url === "/v2/") {
        res.writeHead(401, { "www-authenticate": 'Basic realm="test"' }).end();
      } else {
        // Some registries hide private repositories from anonymous clients behind a 404.
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "unknown" }] }));
      }
      return;
    }
    if (req.url === "/v2/") res.end("{}");
    else
      res
        .writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" })
        .end(MANIFEST);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe("RegistryClient: the first request to an endpoint", () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  it("uses the anonymous answer sent alongside the ping when the registry wants no credentials", async () => {
    const r = await registry(false);
    servers.push(r.server);
    const client = new RegistryClient({});
    try {
      const got = await client.fetchManifest({ domain: r.host, path: "app" }, "v1");
      assert.equal(got.bytes.toString(), MANIFEST);
      await client.fetchManifest({ domain: r.host, path: "app" }, "v2");
    } finally {
      await client.close();
    }
    // one ping, then each manifest once: nothing was sent twice
    assert.deepEqual(r.seen.map((s) => s.path).sort(), [
      "/v2/",
      "/v2/app/manifests/v1",
      "/v2/app/manifests/v2",
    ]);
  });

  it("ignores what an anonymous request was told (404) once the ping asks for credentials", async () => {
    const r = await registry(true);
    servers.push(r.server);
    const client = new RegistryClient({
      credentials: { get: async () => ({ username: "alice", password: "secret" }) },
    });
    try {
      const got = await client.fetchManifest({ domain: r.host, path: "private" }, "v1");
      assert.equal(got.bytes.toString(), MANIFEST);
    } finally {
      await client.close();
    }
    const manifestRequests = r.seen.filter((s) => s.path === "/v2/private/manifests/v1");
    assert.ok(
      manifestRequests.some((s) => s.authorized),
      "the manifest was fetched with credentials",
    );
  });
});

describe("RegistryClient: a Bearer challenge the token flow cannot follow", () => {
  it("without a realm, or with one that is not a URL: FERRY_REGISTRY_ERROR naming the host, with a hint", async () => {
    for (const [challenge, message] of [
      ['Bearer service="x"', "sent a Bearer challenge without a realm"],
      ['Bearer realm="::not a url",service="x"', 'named an invalid token realm "::not a url"'],
    ]) {
      const server = createServer((_req, res) => {
        res.writeHead(401, { "www-authenticate": challenge }).end();
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const client = new RegistryClient();
      try {
        await assert.rejects(
          client.fetchManifest({ domain: host, path: "x" }, "v1"),
          (err: unknown) =>
            isFerryError(err, "FERRY_REGISTRY_ERROR") &&
            err.message === `registry ${host} ${message}` &&
            /operator/.test(err.hint ?? ""),
        );
      } finally {
        await client.close();
        server.close();
      }
    }
  });
});

describe("RegistryClient: the deadline", () => {
  it("covers the token request a manifest needs: a token server that never answers ends it", {
    timeout: 30_000,
  }, async () => {
    const silent = createServer(() => {}); // reads requests, never answers
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const realm = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/token`;
    const registry = createServer((_req, res) => {
      res.writeHead(401, { "www-authenticate": `Bearer realm="${realm}",service="x"` }).end();
    });
    await new Promise<void>((r) => registry.listen(0, "127.0.0.1", r));
    const host = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
    const client = new RegistryClient({ timeoutMs: 1000 });
    try {
      await assert.rejects(
        client.fetchManifest({ domain: host, path: "x" }, "v1"),
        (err: unknown) => {
          assert.ok(isFerryError(err, "FERRY_TIMEOUT"), String(err));
          assert.match(
            err.message,
            new RegExp(
              // The deadline ends it: when it has run out, or when the next attempt would start past it.
              `^manifest v1 of ${host}/x: no progress(?: for 1 s|, and the next attempt would start past the 1 s deadline), gave up after \\d+ attempts in `,
            ),
          );
          assert.equal(err.fields["timeoutMs"], 1000);
          return true;
        },
      );
    } finally {
      await client.close();
      silent.closeAllConnections();
      silent.close();
      registry.close();
    }
  });
});
