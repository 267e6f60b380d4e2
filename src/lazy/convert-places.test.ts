import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isFerryError } from "../observe/index.ts";
import { rehashing } from "./convert-places.ts";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe("rehashing (the reader a converted layer is uploaded through)", () => {
  it("hands over the bytes when they are the digest, and refuses the last read when they are not", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-rehash-"));
    try {
      const path = join(dir, "layer");
      const bytes = Buffer.from("the converted layer, as hashed while written");
      await writeFile(path, bytes);
      const desc = { mediaType: "x", digest: sha(bytes), size: bytes.length };
      const file = await open(path, "r");
      try {
        const read = rehashing(file, desc);
        const parts = [await read(0, 10), await read(10, bytes.length)];
        assert.deepEqual(Buffer.concat(parts), bytes);
        await assert.rejects(rehashing(file, desc)(5, 10), /out of order/);
      } finally {
        await file.close();
      }
      // The file changes on disk between writing and uploading: the final read throws.
      const changed = Buffer.from(bytes);
      changed[3] = 0x21;
      await writeFile(path, changed);
      const again = await open(path, "r");
      try {
        const read = rehashing(again, desc);
        await read(0, 10);
        await assert.rejects(read(10, bytes.length), (err: unknown) =>
          isFerryError(err, "FERRY_DIGEST_MISMATCH"),
        );
      } finally {
        await again.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
