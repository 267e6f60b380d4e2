import assert from "node:assert/strict";
import type { LookupAddress } from "node:dns";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { AddressGuard, addressRefusal, registryHostRefusal } from "./address-guard.ts";
import { requestOnce } from "./blob-reader.ts";
import { createAgents, send } from "./transport.ts";

// Addresses are only classified here, never connected to: names are resolved by a stand-in resolver.
const REFUSED = [
  "169.254.169.254",
  "169.254.0.1",
  "fe80::1",
  "::ffff:169.254.169.254",
  "::ffff:a9fe:a9fe",
  "0.0.0.0",
  "0.1.2.3",
  "::",
  "224.0.0.1",
  "239.255.255.250",
  "255.255.255.255",
  "ff02::1",
  "fd00:ec2::254",
  "100.100.100.200",
];
const ALLOWED = [
  "127.0.0.1",
  "::1",
  "10.1.2.3",
  "192.168.1.1",
  "198.18.0.1",
  "192.0.2.1",
  "2001:db8::1",
];

/** A resolver answering from a table, as DNS would; counts the lookups. */
function table(entries: Record<string, string[]>): {
  resolve: (host: string) => Promise<LookupAddress[]>;
  asked: string[];
} {
  const asked: string[] = [];
  return {
    asked,
    resolve: async (host) => {
      asked.push(host);
      const all = entries[host];
      if (all === undefined) throw Object.assign(new Error(`no ${host}`), { code: "ENOTFOUND" });
      return all.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    },
  };
}

describe("addressRefusal", () => {
  for (const a of REFUSED) it(`refuses ${a}`, () => assert.notEqual(addressRefusal(a), undefined));
  for (const a of ALLOWED) it(`allows ${a}`, () => assert.equal(addressRefusal(a), undefined));
  it("says why", () => assert.match(addressRefusal("169.254.169.254") ?? "", /link-local/));
});

describe("registryHostRefusal", () => {
  it("allows registry hosts, names unresolved", () => {
    for (const ok of ["docker.io", "registry.invalid:5000", "127.0.0.1:5000", "[::1]:5000"])
      assert.equal(registryHostRefusal(ok), undefined, ok);
  });
  it("refuses refused IP literals and what is not a host[:port]", () => {
    for (const bad of [
      "169.254.169.254",
      "169.254.169.254:80",
      "[fe80::1]:5000",
      "[::ffff:169.254.169.254]",
      "0.0.0.0:5000",
      "user@registry.invalid",
      "registry.invalid/path",
      "http://registry.invalid",
    ])
      assert.notEqual(registryHostRefusal(bad), undefined, bad);
  });
});

describe("AddressGuard", () => {
  let server: Server;
  let port: number;
  let connections = 0;

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === "/away") {
        res.writeHead(302, { location: `http://metadata.test:${port}/landed` }).end();
        return;
      }
      res.end(`here ${req.url}`);
    });
    server.on("connection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("refuses a literal refused address before any connection", () => {
    const guard = new AddressGuard(table({}).resolve);
    assert.throws(
      () => guard.connectOptions("169.254.169.254"),
      (err) => isFerryError(err, "FERRY_ADDRESS_REFUSED"),
    );
    assert.throws(
      () => guard.connectOptions("[fe80::1]"),
      (err) => isFerryError(err, "FERRY_ADDRESS_REFUSED"),
    );
    assert.deepEqual(guard.connectOptions("127.0.0.1"), {});
  });

  it("a name resolving to a metadata address fails the lookup, also among good addresses", async () => {
    const dns = table({ "metadata.test": ["127.0.0.1", "169.254.169.254"] });
    const guard = new AddressGuard(dns.resolve);
    const err = await new Promise<unknown>((resolve) =>
      guard.lookup("metadata.test", { all: true }, (e) => resolve(e)),
    );
    assert.ok(isFerryError(err, "FERRY_ADDRESS_REFUSED"), String(err));
    assert.match((err as Error).message, /metadata\.test \(169\.254\.169\.254\)/);
  });

  it("connects to the very address it checked (the name is resolved once, by the guard)", async () => {
    const dns = table({ "registry.test": ["127.0.0.1"] });
    const guard = new AddressGuard(dns.resolve);
    const res = await requestOnce({
      method: "GET",
      url: `http://registry.test:${port}/v2/`,
      headers: {},
      idleTimeoutMs: 10_000,
      guard,
    });
    let body = "";
    for await (const c of res.body) body += String(c);
    assert.equal(body, "here /v2/");
    assert.deepEqual(dns.asked, ["registry.test"]);
  });

  it("a request whose name resolves to a refused address makes no connection", async () => {
    const guard = new AddressGuard(table({ "metadata.test": ["169.254.169.254"] }).resolve);
    const before = connections;
    await assert.rejects(
      requestOnce({
        method: "GET",
        url: `http://metadata.test:${port}/`,
        headers: {},
        idleTimeoutMs: 10_000,
        guard,
      }),
      (err) => isFerryError(err, "FERRY_ADDRESS_REFUSED"),
    );
    assert.equal(connections, before);
  });

  it("HTTPS too: a name resolving to a refused address is refused at lookup", async () => {
    const dns = table({ "metadata.test": ["169.254.169.254"] });
    const agents = createAgents();
    try {
      await assert.rejects(
        send(
          { method: "GET", url: "https://metadata.test/", guard: new AddressGuard(dns.resolve) },
          { agents },
        ),
        (err) => isFerryError(err, "FERRY_ADDRESS_REFUSED"),
      );
      assert.deepEqual(dns.asked, ["metadata.test"]);
    } finally {
      agents.destroy();
    }
  });

  it("a redirect to a name that resolves to a refused address is refused too", async () => {
    const dns = table({ "registry.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"] });
    const agents = createAgents();
    try {
      await assert.rejects(
        send(
          {
            method: "GET",
            url: `http://registry.test:${port}/away`,
            guard: new AddressGuard(dns.resolve),
          },
          { agents },
        ),
        (err) => isFerryError(err, "FERRY_ADDRESS_REFUSED"),
      );
      assert.deepEqual(dns.asked, ["registry.test", "metadata.test"]);
    } finally {
      agents.destroy();
    }
  });
});
