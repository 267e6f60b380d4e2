import { createHmac, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { FerryError } from "../observe/index.ts";

/** The request header that carries a peer's signature. */
export const PEER_AUTH_HEADER = "x-ferry-peer-auth";
/** Requests signed further from the receiver's clock than this are refused (replay window). */
export const MAX_SKEW_MS = 60_000;
const MIN_KEY_BYTES = 16;

/** `v1 t=<unix ms>,s=<hex HMAC-SHA256(key, METHOD \n PATH \n t)>` for one request. */
export function signRequest(key: Buffer, method: string, path: string, now = Date.now()): string {
  return `v1 t=${now},s=${mac(key, method, path, now)}`;
}

/** Whether `header` is a valid signature of this request by a holder of `key`, made within MAX_SKEW_MS. */
export function verifyRequest(
  key: Buffer,
  method: string,
  path: string,
  header: string | undefined,
  now = Date.now(),
): boolean {
  const m = /^v1 t=(\d{1,16}),s=([0-9a-f]{64})$/.exec(header ?? "");
  if (m === null) return false;
  const t = Number(m[1]);
  if (Math.abs(now - t) > MAX_SKEW_MS) return false;
  const expected = Buffer.from(mac(key, method, path, t), "hex");
  const given = Buffer.from(m[2] as string, "hex");
  return timingSafeEqual(expected, given);
}

function mac(key: Buffer, method: string, path: string, t: number): string {
  // HEAD is signed as GET: both read the same thing, and clients may turn one into the other.
  const verb = method === "HEAD" ? "GET" : method;
  return createHmac("sha256", key).update(`${verb}\n${path}\n${t}`).digest("hex");
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
