import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { FerryError } from "../observe/index.ts";

/** The request header that carries a peer's signature. */
export const PEER_AUTH_HEADER = "x-ferry-peer-auth";
/** Requests signed further from the receiver's clock than this are refused (replay window). */
export const MAX_SKEW_MS = 60_000;
const MIN_KEY_BYTES = 16;

/**
 * `v2 t=<unix ms>,n=<random hex>,s=<hex HMAC-SHA256(key, METHOD \n PATH \n t \n n)>` for one
 * request. The nonce makes every signature unique (two nodes asking for the same blob in the
 * same millisecond included), so a receiver can refuse any signature it has seen before.
 */
export function signRequest(key: Buffer, method: string, path: string, now = Date.now()): string {
  const nonce = randomBytes(16).toString("hex");
  return `v2 t=${now},n=${nonce},s=${mac(key, method, path, now, nonce)}`;
}

const SIGNATURE = /^v2 t=(\d{1,16}),n=([0-9a-f]{32}),s=([0-9a-f]{64})$/;

/** Whether `header` is a valid signature of this request by a holder of `key`, made within MAX_SKEW_MS. */
export function verifyRequest(
  key: Buffer,
  method: string,
  path: string,
  header: string | undefined,
  now = Date.now(),
): boolean {
  const m = SIGNATURE.exec(header ?? "");
  if (m === null) return false;
  const t = Number(m[1]);
  if (Math.abs(now - t) > MAX_SKEW_MS) return false;
  const expected = Buffer.from(mac(key, method, path, t, m[2] as string), "hex");
  const given = Buffer.from(m[3] as string, "hex");
  return timingSafeEqual(expected, given);
}

function mac(key: Buffer, method: string, path: string, t: number, nonce: string): string {
  // HEAD is signed as GET: both read the same thing, and clients may turn one into the other.
  const verb = method === "HEAD" ? "GET" : method;
  return createHmac("sha256", key).update(`${verb}\n${path}\n${t}\n${nonce}`).digest("hex");
}

/**
 * Signatures already accepted, kept for as long as they could still verify (the skew window
 * on either side), so a captured request cannot be sent again — with other headers, say.
 * Bounded: past `limit` entries, requests are refused until old ones expire (a flood of
 * valid signatures needs the fleet key).
 */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();
  readonly #limit: number;

  constructor(limit = 200_000) {
    this.#limit = limit;
  }

  /** Records a verified signature; false if it was seen before (a replay) or the guard is full. */
  admit(header: string, now = Date.now()): boolean {
    const m = SIGNATURE.exec(header);
    if (m === null) return false;
    const id = `${m[1]},${m[2]}`;
    if (this.#seen.has(id)) return false;
    if (this.#seen.size >= this.#limit) {
      this.#prune(now);
      if (this.#seen.size >= this.#limit) return false;
    }
    this.#seen.set(id, Number(m[1]) + MAX_SKEW_MS);
    if (this.#seen.size % 1024 === 0) this.#prune(now);
    return true;
  }

  #prune(now: number): void {
    for (const [id, until] of this.#seen) if (until < now) this.#seen.delete(id);
  }
}

/** Reads the fleet's shared key (`--peer-key-file`): at least 16 bytes after trimming whitespace. */
export async function loadPeerKey(path: string): Promise<Buffer> {
  let text: Buffer;
  try {
    text = await readFile(path);
  } catch (err) {
    throw new FerryError("FERRY_CONFIG_INVALID", `cannot read peer key file ${path}`, {
      hint: "create it with e.g. `head -c 32 /dev/urandom | base64 > FILE` and give every node the same file",
      cause: err,
    });
  }
  const key = Buffer.from(text.toString("utf8").trim(), "utf8");
  if (key.length < MIN_KEY_BYTES) {
    throw new FerryError(
      "FERRY_CONFIG_INVALID",
      `peer key file ${path} holds ${key.length} bytes; at least ${MIN_KEY_BYTES} are needed`,
      { hint: "use e.g. `head -c 32 /dev/urandom | base64 > FILE` on one node and copy it to all" },
    );
  }
  return key;
}
