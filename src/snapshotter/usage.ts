// Disk usage of a snapshot's directory, as containerd's Usage reports it: bytes in blocks and
// inodes, each hard-linked inode counted once.
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

export interface Usage {
  size: number;
  inodes: number;
}

export async function diskUsage(dir: string): Promise<Usage> {
  const seen = new Set<number>();
  let size = 0;
  const visit = async (path: string): Promise<void> => {
    const st = await lstat(path);
    if (seen.has(st.ino)) return;
    seen.add(st.ino);
    size += st.blocks * 512;
    if (!st.isDirectory()) return;
    for (const name of await readdir(path)) await visit(join(path, name));
  };
  await visit(dir);
  return { size, inodes: seen.size };
}
