import { FerryError } from "../observe/index.ts";
import { redact } from "./network-error.ts";
import type { HttpResponse } from "./transport.ts";

/** Reads a whole (small) body as text, refusing more than `limit` bytes. */
export async function readText(res: HttpResponse, limit = 4 * 1024 * 1024): Promise<string> {
  return (await readBytes(res, limit)).toString("utf8");
}

/** `onBytes` hears the bytes read so far as each piece arrives (a deadline counts them as progress). */
export async function readBytes(
  res: HttpResponse,
  limit: number,
  onBytes: (size: number) => void = () => {},
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    onBytes(size);
    if (size > limit) {
      res.body.destroy();
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `response from ${redact(res.url)} is larger than ${limit} bytes`,
        {
          hint: "no registry response of this kind is that large; check the registry address, or report it to the registry's operator",
          fields: { limit },
        },
      );
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
