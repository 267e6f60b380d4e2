import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { FerryError } from "../observe/index.ts";
import { diskError, writeFileAtomic } from "./atomic.ts";
import { indexPath, withIndexLock, writeIndexEntries } from "./index-file.ts";

export const OCI_LAYOUT_VERSION = "1.0.0";

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Creates the OCI image layout at `root` if absent; refuses a directory that is something else. */
export async function initLayout(root: string): Promise<void> {
  try {
    await mkdir(join(root, "blobs", "sha256"), { recursive: true });
    await mkdir(join(root, "ferry", "ingest"), { recursive: true });
  } catch (err) {
    throw diskError(err, root);
  }
  const layoutPath = join(root, "oci-layout");
  const layout = await readFile(layoutPath, "utf8").catch(() => undefined);
  if (layout === undefined) {
    await writeFileAtomic(layoutPath, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
  } else {
    let version: unknown;
    try {
      version = (JSON.parse(layout) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (version !== OCI_LAYOUT_VERSION) {
      throw new FerryError(
        "FERRY_STORE_CORRUPT",
        `${layoutPath} is not an OCI image layout version ${OCI_LAYOUT_VERSION}`,
        { hint: "point --store at an empty directory or an existing ferry store" },
      );
    }
  }
  if (!(await exists(indexPath(root)))) {
    await withIndexLock(root, async () => {
      if (!(await exists(indexPath(root)))) await writeIndexEntries(root, []);
    });
  }
}
