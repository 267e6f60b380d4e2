import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { FerryError } from "../observe/index.ts";

/** The request header that carries a peer's signature. */
export const PEER_AUTH_HEADER = "x-ferry-peer-auth";
/** Requests signed further from the receiver's clock than this are refused (replay window). */
export const MAX_SKEW_MS = 60_000;
const MIN_KEY_BYTES = 16;

/**
 * `v2 t=<unix ms>,n=<random hex>[,h=<name;name…>],s=<hex HMAC-SHA256>` for one request: the
 * MAC covers method, path, time, nonce and the values of the `covered` headers (named in
 * `h=`; the receiver takes their values from the request). The nonce makes every signature
 * unique (two nodes asking for the same blob in the same millisecond included), so a
 * receiver can refuse any signature it has seen before.
 */
export function signRequest(
  key: Buffer,
  method: string,
  path: string,
  now = Date.now(),
  covered: Record<string, string> = {},
): string {
  const nonce = randomBytes(16).toString("hex");
  const names = Object.keys(covered).map((n) => n.toLowerCase());
  for (const n of names) if (!HEADER_NAME.test(n)) throw new Error(`cannot sign header ${n}`);
  const values = Object.values(covered);
  const h = names.length === 0 ? "" : `,h=${names.join(";")}`;
  return `v2 t=${now},n=${nonce}${h},s=${mac(key, method, path, now, nonce, names, values)}`;
}

const HEADER_NAME = /^[a-z0-9-]{1,64}$/;
const SIGNATURE =
  /^v2 t=(\d{1,16}),n=([0-9a-f]{32})(?:,h=([a-z0-9-]{1,64}(?:;[a-z0-9-]{1,64}){0,15}))?,s=([0-9a-f]{64})$/;

/** The headers a signature covers (lowercase), as it names them; [] for none or a malformed one. */
export function coveredHeaders(header: string | undefined): string[] {
  return SIGNATURE.exec(header ?? "")?.[3]?.split(";") ?? [];
}

/**
 * Whether `header` is a valid signature of this request by a holder of `key`, made within
 * MAX_SKEW_MS; `headerOf` gives the request's value of each header the signature covers.
 */
export function verifyRequest(
  key: Buffer,
  method: string,
  path: string,
  header: string | undefined,
  now = Date.now(),
  headerOf: (name: string) => string | undefined = () => undefined,
): boolean {
  const m = SIGNATURE.exec(header ?? "");
  if (m === null) return false;
  const t = Number(m[1]);
  if (Math.abs(now - t) > MAX_SKEW_MS) return false;
  const names = m[3]?.split(";") ?? [];
  const values = names.map(headerOf);
  const expected = Buffer.from(mac(key, method, path, t, m[2] as string, names, values), "hex");
  const given = Buffer.from(m[4] as string, "hex");
  return timingSafeEqual(expected, given);
}

function mac(
  key: Buffer,
  method: string,
  path: string,
  t: number,
  nonce: string,
  names: string[],
  values: Array<string | undefined>,
): string {
  // HEAD is signed as GET: both read the same thing, and clients may turn one into the other.
  const verb = method === "HEAD" ? "GET" : method;
  // JSON keeps the parts apart whatever they hold; a missing header is null, never "".
  const signed = JSON.stringify([verb, path, t, nonce, names, values.map((v) => v ?? null)]);
  return createHmac("sha256", key).update(signed).digest("hex");
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
