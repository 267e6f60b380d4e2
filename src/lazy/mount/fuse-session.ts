// One FUSE connection: opens /dev/fuse, mounts it (mount(8) with the device as fd 3, as root),
// reads requests and writes replies. Reads of /dev/fuse block, so they run on libuv's thread
// pool one at a time; requests are answered concurrently on the main thread.
import { execFile, spawn } from "node:child_process";
import { closeSync, openSync, read, write, writeSync } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { FerryError } from "../../observe/index.ts";
import {
  encodeInit,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  InitFlag,
  invalidateEntryNotice,
  NO_REPLY_OPCODES,
  Opcode,
  parseInit,
  parseRequest,
  type Request,
  reply,
} from "./fuse-protocol.ts";

const execFileAsync = promisify(execFile);

/** Largest READ the kernel sends (32 pages); also max_write, which sizes the read buffer. */
export const MAX_IO = 128 * 1024;
const READ_BUFFER = MAX_IO + 64 * 1024;
const ENOSYS = 38;
const EIO = 5;

/** An answer: an errno (0 for success) and the payload of a successful reply. */
export interface Answer {
  readonly error: number;
  readonly payload?: Buffer | undefined;
}

export type Handler = (request: Request) => Promise<Answer | undefined> | Answer | undefined;

export interface FuseSessionOptions {
  /** What /proc/mounts shows as the source. */
  source: string;
  /** Called with requests the session does not answer itself (all but INIT and DESTROY). */
  handler: Handler;
  /** Called when an answer could not be computed (a bug or an I/O failure): the request got EIO. */
  onError?: (err: unknown, request: Request) => void;
}

export class FuseSession {
  readonly dir: string;
  readonly #fd: number;
  readonly #options: FuseSessionOptions;
  #connection: number | undefined;
  #open = true;
  #notices: Promise<void> = Promise.resolve();
  /** Resolves when the kernel ends the connection (unmounted or aborted). */
  readonly closed: Promise<void>;

  private constructor(dir: string, fd: number, options: FuseSessionOptions) {
    this.dir = dir;
    this.#fd = fd;
    this.#options = options;
    this.closed = this.#loop();
  }

  /** Mounts a read-only FUSE filesystem at `dir` served by `options.handler`. */
  static async mount(dir: string, options: FuseSessionOptions): Promise<FuseSession> {
    let fd: number;
    try {
      fd = openSync("/dev/fuse", "r+");
    } catch (cause) {
      throw new FerryError("FERRY_INVALID_ARGUMENT", "cannot open /dev/fuse", {
        hint: "FUSE must be available (modprobe fuse; in a container, pass --device /dev/fuse)",
        cause,
      });
    }
    const opts = [
      "fd=3",
      "rootmode=40000",
      "user_id=0",
      "group_id=0",
      "allow_other",
      "default_permissions",
      "ro",
      // Every local user sees this mount (allow_other): the image's setuid/setgid files and
      // file capabilities must not grant anything, nor its device nodes open host devices.
      "nosuid",
      "nodev",
      `max_read=${MAX_IO}`,
    ];
    // -i: no /sbin/mount.fuse helper (it would take the source for a program to run).
    const child = spawn(
      "mount",
      ["-i", "-n", "-t", "fuse", "-o", opts.join(","), options.source, dir],
      {
        stdio: ["ignore", "ignore", "pipe", fd],
      },
    );
    let stderr = "";
    child.stderr?.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const code = await new Promise<number | null>((resolve) => {
      child.once("error", () => resolve(-1));
      child.once("close", resolve);
    });
    if (code !== 0) {
      closeSync(fd);
      throw new FerryError(
        "FERRY_INVALID_ARGUMENT",
        `cannot mount a FUSE filesystem on ${dir}: ${stderr.trim() || `mount exited with ${code}`}`,
        {
          hint: "ferry mount needs root (or CAP_SYS_ADMIN), an existing empty directory, and mount(8)",
          fields: { dir },
        },
      );
    }
    const session = new FuseSession(dir, fd, options);
    try {
      const st = await stat(dir);
      session.#connection = Number((BigInt(st.dev) & 0xffn) | ((BigInt(st.dev) >> 12n) & 0xfff00n));
    } catch {
      // Only the forced unmount needs it.
    }
    return session;
  }

  /**
   * Makes the kernel forget entry `name` of directory inode `parent` (one the filesystem
   * removed). Written off the main thread, since the kernel may wait for a lookup that this
   * thread answers; and one at a time, since each waiting write holds a libuv pool thread:
   * several at once took every pool thread, and the next read of /dev/fuse never ran.
   */
  invalidateEntry(parent: number, name: string): Promise<void> {
    const notice = invalidateEntryNotice(parent, name);
    const sent = this.#notices.then(
      () =>
        new Promise<void>((resolve) => {
          if (!this.#open) return resolve();
          // ENOENT: the kernel had nothing cached; either way the entry is gone.
          write(this.#fd, notice, () => resolve());
        }),
    );
    this.#notices = sent;
    return sent;
  }

  /**
   * Unmounts. When the mount is busy (a process inside it, an overlay on top), detaches it
   * and aborts the connection so nothing waits on this process any more.
   */
  async unmount(): Promise<void> {
    if (this.#open) {
      try {
        await execFileAsync("umount", [this.dir]);
      } catch {
        await execFileAsync("umount", ["-l", this.dir]).catch(() => undefined);
        if (this.#connection !== undefined)
          await writeFile(`/sys/fs/fuse/connections/${this.#connection}/abort`, "1").catch(
            () => undefined,
          );
      }
    }
    await this.closed;
  }

  async #loop(): Promise<void> {
    const buffer = Buffer.allocUnsafe(READ_BUFFER);
    try {
      for (;;) {
        let n: number;
        try {
          n = await new Promise<number>((resolve, reject) =>
            read(this.#fd, buffer, 0, buffer.length, null, (err, bytes) =>
              err ? reject(err) : resolve(bytes),
            ),
          );
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          // ENOENT: the request was interrupted before it was read; EINTR/EAGAIN: try again.
          if (code === "ENOENT" || code === "EINTR" || code === "EAGAIN") continue;
          if (code === "ENODEV") return;
          throw err;
        }
        if (n === 0) return;
        const request = parseRequest(Buffer.from(buffer.subarray(0, n)));
        if (request.header.opcode === Opcode.DESTROY) {
          this.#send(request, { error: 0 });
          return;
        }
        this.#dispatch(request);
      }
    } finally {
      this.#open = false;
      closeSync(this.#fd);
    }
  }

  #dispatch(request: Request): void {
    const { opcode } = request.header;
    if (opcode === Opcode.INIT) {
      this.#send(request, this.#init(request));
      return;
    }
    let pending: Promise<Answer | undefined>;
    try {
      pending = Promise.resolve(this.#options.handler(request));
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (answer) => {
        if (NO_REPLY_OPCODES.has(opcode)) return;
        this.#send(request, answer ?? { error: ENOSYS });
      },
      (err: unknown) => {
        this.#options.onError?.(err, request);
        if (!NO_REPLY_OPCODES.has(opcode)) this.#send(request, { error: EIO });
      },
    );
  }

  #init(request: Request): Answer {
    const init = parseInit(request.body);
    if (init.major !== FUSE_KERNEL_VERSION) return { error: 71 }; // EPROTO
    const wanted =
      InitFlag.ASYNC_READ | InitFlag.PARALLEL_DIROPS | InitFlag.MAX_PAGES | InitFlag.CACHE_SYMLINKS;
    return {
      error: 0,
      payload: encodeInit({
        minor: Math.min(init.minor, FUSE_KERNEL_MINOR_VERSION),
        maxReadahead: init.maxReadahead,
        flags: (init.flags & wanted) >>> 0,
        maxWrite: MAX_IO,
        maxPages: MAX_IO / 4096,
      }),
    };
  }

  #send(request: Request, answer: Answer): void {
    if (!this.#open) return;
    try {
      writeSync(this.#fd, reply(request.header.unique, answer.error, answer.payload));
    } catch (err) {
      // ENOENT: the kernel gave up on the request (interrupted); nothing to answer.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.#options.onError?.(err, request);
    }
  }
}
