import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import {
  coveredHeaders,
  loadPeerKey,
  MAX_SKEW_MS,
  ReplayGuard,
  signRequest,
  verifyRequest,
} from "./signing.ts";

const key = Buffer.from("0123456789abcdef0123456789abcdef");
const path = "/v2/library/app/blobs/sha256:" + "a".repeat(64) + "?ns=198.18.0.2%3A5000";

describe("peer request signing", () => {
  it("accepts its own signature, for GET and HEAD alike", () => {
    const now = 1_800_000_000_000;
    const header = signRequest(key, "GET", path, now);
    assert.ok(verifyRequest(key, "GET", path, header, now + 5));
    assert.ok(verifyRequest(key, "HEAD", path, header, now + 5));
  });

  it("refuses another key, another path, a missing header and an old signature", () => {
    const now = 1_800_000_000_000;
    const header = signRequest(key, "GET", path, now);
    assert.equal(
      verifyRequest(Buffer.from("another key of sixteen+"), "GET", path, header, now),
      false,
    );
    assert.equal(verifyRequest(key, "GET", path.replace("app", "other"), header, now), false);
    assert.equal(verifyRequest(key, "GET", path, undefined, now), false);
    assert.equal(verifyRequest(key, "GET", path, header, now + MAX_SKEW_MS + 1), false);
    // one hex digit of the MAC changed (to a digit it is not: the nonce makes the MAC random)
    const tampered = header.replace(/s=(.)/, (_, c: string) => `s=${c === "0" ? "1" : "0"}`);
    assert.notEqual(tampered, header);
    assert.equal(verifyRequest(key, "GET", path, tampered, now), false);
  });

  it("every signature is unique, and a replay guard admits each one once while it is valid", () => {
    const now = 1_800_000_000_000;
    const a = signRequest(key, "GET", path, now);
    const b = signRequest(key, "GET", path, now);
    assert.notEqual(a, b, "same request, same millisecond: still two signatures");
    assert.ok(verifyRequest(key, "GET", path, a, now) && verifyRequest(key, "GET", path, b, now));
    const guard = new ReplayGuard();
    assert.equal(guard.admit(a, now), true);
    assert.equal(guard.admit(a, now + 1), false);
    assert.equal(guard.admit(b, now + 1), true);
    // A full guard forgets only signatures too old to verify anyway.
    const small = new ReplayGuard(1);
    assert.equal(small.admit(a, now), true);
    assert.equal(small.admit(b, now + 1), false);
    assert.equal(small.admit(b, now + MAX_SKEW_MS + 1), true);
    assert.equal(guard.admit("v1 t=1,s=00", now), false);
  });

  it("binds the headers it covers: another value, or a missing one, fails", () => {
    const now = 1_800_000_000_000;
    const sent = { "x-ferry-size": "10", "x-ferry-upstream-authorization": "Bearer tok" };
    const sig = signRequest(key, "GET", path, now, sent);
    assert.deepEqual(coveredHeaders(sig), ["x-ferry-size", "x-ferry-upstream-authorization"]);
    const from = (h: Record<string, string>) => (n: string) => h[n];
    assert.ok(verifyRequest(key, "GET", path, sig, now, from(sent)));
    const swapped = { ...sent, "x-ferry-upstream-authorization": "Bearer other" };
    assert.equal(verifyRequest(key, "GET", path, sig, now, from(swapped)), false);
    assert.equal(verifyRequest(key, "GET", path, sig, now, from({ "x-ferry-size": "10" })), false);
    // The list of covered headers is itself signed.
    const fewer = sig.replace(",h=x-ferry-size;x-ferry-upstream-authorization", ",h=x-ferry-size");
    assert.equal(verifyRequest(key, "GET", path, fewer, now, from(sent)), false);
    assert.deepEqual(coveredHeaders(signRequest(key, "GET", path, now)), []);
  });

  it("loads a key file and refuses a short one with a clear error", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-peer-key-"));
    try {
      await writeFile(join(dir, "good"), "c2VjcmV0LWZsZWV0LWtleS0xMjM0NTY=\n");
      assert.equal(
        (await loadPeerKey(join(dir, "good"))).toString(),
        "c2VjcmV0LWZsZWV0LWtleS0xMjM0NTY=",
      );
      await writeFile(join(dir, "short"), "abc\n");
      await assert.rejects(loadPeerKey(join(dir, "short")), (e) =>
        isFerryError(e, "FERRY_CONFIG_INVALID"),
      );
      await assert.rejects(loadPeerKey(join(dir, "missing")), (e) =>
        isFerryError(e, "FERRY_CONFIG_INVALID"),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
