/**
 * The filesystem seam of the storage layer: the few async operations a partition log needs, and
 * the real implementation on node:fs/promises.
 *
 * Invariants the log relies on:
 * - `LogFile.append` writes at the file's current end; callers serialize appends to one file.
 * - `LogFile.read` returns fewer bytes than asked only at end of file.
 * - Bytes are durable only after `datasync`; a rename or unlink is durable after `fsyncDir`.
 * - Missing files raise an error whose `code` is 'ENOENT' (see isNotFound).
 */

import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

/**
 * Appends up to this size are written with a synchronous positional write (a page-cache copy of
 * at most ~1 MiB, tens to a few hundred microseconds on the event loop); larger ones go through
 * the thread pool. The trade-off: a kernel that throttles dirty pages stalls the event loop for
 * the duration of such a write, as it stalls a Kafka request-handler thread.
 */
export const SYNC_WRITE_MAX_BYTES = 1 << 20;

export interface LogFile {
  readonly path: string;
  /** Current length in bytes, as seen by this handle (includes unsynced bytes). */
  size(): Promise<number>;
  /** Appends all of `data` at the current end of file. */
  append(data: Uint8Array): Promise<void>;
  /** Reads up to `length` bytes at `position`; shorter only at end of file. */
  read(position: number, length: number): Promise<Buffer>;
  /**
   * Reads up to `length` bytes at `position` into `target` from index 0 (which must hold them);
   * returns the count, shorter only at end of file. Optional: callers fall back to `read`.
   */
  readInto?(target: Buffer, position: number, length: number): Promise<number>;
  datasync(): Promise<void>;
  truncate(lengthBytes: number): Promise<void>;
  close(): Promise<void>;
}

export interface FileStat {
  sizeBytes: number;
  isDirectory: boolean;
}

export interface LogFileSystem {
  /** Opens for read and append, creating an empty file if missing. */
  open(path: string): Promise<LogFile>;
  /** Entry names (not paths) of a directory. */
  readdir(dir: string): Promise<string[]>;
  /** Creates the directory and its parents; no error if it exists. */
  mkdir(dir: string): Promise<void>;
  rename(fromPath: string, toPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** null when the path does not exist. */
  stat(path: string): Promise<FileStat | null>;
  /** Removes a directory and everything under it. */
  rmrf(dir: string): Promise<void>;
  /** Makes renames, creates and unlinks inside `dir` durable. */
  fsyncDir(dir: string): Promise<void>;
}

class NodeLogFile implements LogFile {
  readonly path: string;
  private readonly handle: FileHandle;
  // Tracked here rather than asked of the OS on every append: appends are serialized by the
  // caller, so this is exact, and it lets append use positional writes (no O_APPEND quirks).
  private endBytes: number;

  constructor(path: string, handle: FileHandle, endBytes: number) {
    this.path = path;
    this.handle = handle;
    this.endBytes = endBytes;
  }

  async size(): Promise<number> {
    return this.endBytes;
  }

  async append(data: Uint8Array): Promise<void> {
    let written = 0;
    if (data.length <= SYNC_WRITE_MAX_BYTES) {
      // A copy into the page cache: cheaper done here than handed to a libuv worker thread and
      // back (a thread-pool round trip per produce request, whose wake-ups are what a busy machine
      // delays). fdatasync, which does wait for the disk, stays asynchronous.
      while (written < data.length) {
        written += fs.writeSync(
          this.handle.fd,
          data,
          written,
          data.length - written,
          this.endBytes + written,
        );
      }
    } else {
      while (written < data.length) {
        const { bytesWritten } = await this.handle.write(
          data,
          written,
          data.length - written,
          this.endBytes + written,
        );
        written += bytesWritten;
      }
    }
    this.endBytes += data.length;
  }

  async read(position: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(Math.max(0, length));
    const filled = await this.readInto(out, position, length);
    return filled === length ? out : out.subarray(0, filled);
  }

  async readInto(target: Buffer, position: number, length: number): Promise<number> {
    if (length > target.length) throw new RangeError(`readInto of ${length} bytes into ${target.length}`);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.handle.read(target, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled;
  }

  async datasync(): Promise<void> {
    await this.handle.datasync();
  }

  async truncate(lengthBytes: number): Promise<void> {
    await this.handle.truncate(lengthBytes);
    this.endBytes = lengthBytes;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

export class NodeFileSystem implements LogFileSystem {
  async open(path: string): Promise<LogFile> {
    let handle: FileHandle;
    try {
      handle = await fsp.open(path, 'r+');
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
      // 'wx+' fails rather than truncating if someone created the file in between.
      handle = await fsp.open(path, 'wx+').catch(async (e: unknown) => {
        if ((e as { code?: unknown }).code === 'EEXIST') return fsp.open(path, 'r+');
        throw e;
      });
    }
    const { size } = await handle.stat();
    return new NodeLogFile(path, handle, size);
  }

  async readdir(dir: string): Promise<string[]> {
    return fsp.readdir(dir);
  }

  async mkdir(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
  }

  async rename(fromPath: string, toPath: string): Promise<void> {
    await fsp.rename(fromPath, toPath);
  }

  async unlink(path: string): Promise<void> {
    await fsp.unlink(path);
  }

  async stat(path: string): Promise<FileStat | null> {
    try {
      const s = await fsp.stat(path);
      return { sizeBytes: s.size, isDirectory: s.isDirectory() };
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return null;
      throw err;
    }
  }

  async rmrf(dir: string): Promise<void> {
    await fsp.rm(dir, { recursive: true, force: true });
  }

  async fsyncDir(dir: string): Promise<void> {
    const handle = await fsp.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
