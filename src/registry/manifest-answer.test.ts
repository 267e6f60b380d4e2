import assert from "node:assert/strict";
import { createServer, type OutgoingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { digestOf } from "../digest/index.ts";
import { isFerryError } from "../observe/index.ts";
import { Deadline } from "./deadline.ts";
import { MAX_MANIFEST_BYTES, readManifest } from "./manifest-answer.ts";
import { DEFAULT_RETRY } from "./retry.ts";
import { send } from "./transport.ts";

// Manifest answers read from a real HTTP server on loopback.

const MANIFEST = Buffer.from('{"schemaVersion":2,"layers":[]}');
const repo = { domain: "127.0.0.1", path: "lib/app" };

/** path → what the server answers it with (200, these headers, this body). */
const answers = new Map<string, { headers: OutgoingHttpHeaders; body: Buffer }>();
const server = createServer((req, res) => {
  const a = answers.get(req.url ?? "");
  res.writeHead(200, a?.headers ?? {}).end(a?.body ?? "");
});
let base = "";
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function answer(
  path: string,
  body: Buffer,
  headers: OutgoingHttpHeaders,
  reference: string,
  known?: { digest: string; bytes: Uint8Array },
) {
  answers.set(path, { headers, body });
  const res = await send({ method: "GET", url: `${base}${path}`, headers: {} });
  const deadline = new Deadline(DEFAULT_RETRY);
  return readManifest(res, {
    repo,
    reference,
    servedBy: "127.0.0.1",
    known: Promise.resolve(known),
    deadline,
  });
}

describe("readManifest", () => {
  it("gives the bytes, their digest and the media type without its parameters", async () => {
    const got = await answer(
      "/ok",
      MANIFEST,
      { "content-type": "application/vnd.oci.image.manifest.v1+json; charset=utf-8" },
      "v1",
    );
    assert.ok(got.bytes.equals(MANIFEST));
    assert.equal(got.digest, digestOf(MANIFEST));
    assert.equal(got.mediaType, "application/vnd.oci.image.manifest.v1+json");
  });

  it("keeps a known manifest's digest for the same bytes", async () => {
    const known = { digest: digestOf(MANIFEST), bytes: Buffer.from(MANIFEST) };
    const got = await answer("/known", MANIFEST, {}, "v1", known);
    assert.equal(got.digest, known.digest);
  });

  it("refuses bytes that are not the digest asked by, or not the digest announced", async () => {
    const other = digestOf("another manifest");
    await assert.rejects(answer("/by-digest", MANIFEST, {}, other), (err) =>
      isFerryError(err, "FERRY_DIGEST_MISMATCH"),
    );
    await assert.rejects(
      answer("/announced", MANIFEST, { "docker-content-digest": other }, "v1"),
      (err) => isFerryError(err, "FERRY_DIGEST_MISMATCH") && err.fields["expected"] === other,
    );
  });

  it("refuses a body past the limit, announced or not", async () => {
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    await assert.rejects(answer("/announced-big", big, {}, "v1"), (err) =>
      isFerryError(err, "FERRY_INVALID_MANIFEST"),
    );
    await assert.rejects(
      answer("/chunked-big", big, { "transfer-encoding": "chunked" }, "v1"),
      (err) => isFerryError(err, "FERRY_INVALID_MANIFEST"),
    );
  });
});
