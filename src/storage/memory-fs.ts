/**
 * An in-memory LogFileSystem for tests and simulation, with a crash model.
 *
 * Each file keeps its current bytes and its durable bytes (as of the last datasync). `crash()`
 * replaces every file's content with its durable bytes and invalidates every open handle, which is
 * what a power loss does to data written without fdatasync. Metadata operations (create, rename,
 * unlink, mkdir) are modelled as immediately durable — a simplification of a journaling
 * filesystem that keeps the model small; the log still calls fsyncDir where a real one needs it.
 * Paths are plain strings normalised with node:path/posix.
 *
 * Fault injection, for tests of a full or failing disk:
 * - `capacityBytes`: the total bytes all files may hold. An append that does not fit writes the
 *   part that does (as write(2) does on a full disk) and then fails with ENOSPC; growing a file
 *   by truncate fails with ENOSPC, writing nothing. Raise or lower it at any time ("free space").
 * - `failWrites` / `failSyncs` / `failTruncates`: an errno code (e.g. 'EIO') that every append /
 *   datasync / truncate fails with, doing nothing, while set.
 */

import * as path from 'node:path/posix';
import type { FileStat, LogFile, LogFileSystem } from './fs.js';

class FsError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
    this.name = 'FsError';
  }
}

interface MemInode {
  data: Buffer;
  lengthBytes: number;
  durable: Buffer;
}

class MemoryLogFile implements LogFile {
  readonly path: string;
  private closed = false;
  constructor(
    private readonly fs: MemoryFileSystem,
    p: string,
    private readonly inode: MemInode,
    private readonly generation: number,
  ) {
    this.path = p;
  }

  private live(): MemInode {
    if (this.closed) throw new FsError('EBADF', `${this.path} is closed`);
    if (this.generation !== this.fs.generation)
      throw new FsError('EBADF', `${this.path} handle predates a crash`);
    return this.inode;
  }

  async size(): Promise<number> {
    return this.live().lengthBytes;
  }

  async append(input: Uint8Array): Promise<void> {
    const inode = this.live();
    if (this.fs.failWrites !== null) throw new FsError(this.fs.failWrites, `write to ${this.path}`);
    const room = this.fs.freeBytes();
    const full = input.length > room;
    const data = full ? input.subarray(0, room) : input;
    const needed = inode.lengthBytes + data.length;
    if (needed > inode.data.length) {
      let cap = Math.max(64, inode.data.length * 2);
      while (cap < needed) cap *= 2;
      const grown = Buffer.alloc(cap);
      inode.data.copy(grown, 0, 0, inode.lengthBytes);
      inode.data = grown;
    }
    inode.data.set(data, inode.lengthBytes);
    inode.lengthBytes = needed;
    this.fs.bytesWritten += data.length;
    await Promise.resolve();
    if (full) throw new FsError('ENOSPC', `no space left on device (writing ${this.path})`);
  }

  async read(position: number, length: number): Promise<Buffer> {
    const inode = this.live();
    await Promise.resolve();
    const end = Math.min(inode.lengthBytes, position + length);
    if (position >= end) return Buffer.alloc(0);
    return Buffer.from(inode.data.subarray(position, end));
  }

  async readInto(target: Buffer, position: number, length: number): Promise<number> {
    if (length > target.length) throw new RangeError(`readInto of ${length} bytes into ${target.length}`);
    const inode = this.live();
    await Promise.resolve();
    const end = Math.min(inode.lengthBytes, position + length);
    if (position >= end) return 0;
    return inode.data.copy(target, 0, position, end);
  }

  async datasync(): Promise<void> {
    const inode = this.live();
    if (this.fs.failSyncs !== null) throw new FsError(this.fs.failSyncs, `fdatasync of ${this.path}`);
    this.fs.datasyncCount++;
    // Yield first so concurrent appends can interleave, as they would with a real fsync.
    await new Promise<void>((resolve) => setImmediate(resolve));
    inode.durable = Buffer.from(inode.data.subarray(0, inode.lengthBytes));
  }

  async truncate(lengthBytes: number): Promise<void> {
    const inode = this.live();
    if (this.fs.failTruncates !== null) throw new FsError(this.fs.failTruncates, `truncate of ${this.path}`);
    if (lengthBytes > inode.lengthBytes && lengthBytes - inode.lengthBytes > this.fs.freeBytes()) {
      throw new FsError('ENOSPC', `no space left on device (growing ${this.path})`);
    }
    if (lengthBytes < inode.lengthBytes) {
      inode.data.fill(0, lengthBytes, inode.lengthBytes);
    } else if (lengthBytes > inode.data.length) {
      const grown = Buffer.alloc(lengthBytes);
      inode.data.copy(grown, 0, 0, inode.lengthBytes);
      inode.data = grown;
    }
    inode.lengthBytes = lengthBytes;
    await Promise.resolve();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export class MemoryFileSystem implements LogFileSystem {
  private readonly files = new Map<string, MemInode>();
  private readonly dirs = new Set<string>(['/', '.']);
  /** Bumped by crash(); handles from an older generation fail with EBADF. */
  generation = 0;
  datasyncCount = 0;
  bytesWritten = 0;
  /** Total bytes all files may hold (see the file comment); Infinity = no limit. */
  capacityBytes: number;
  /** While set, every append fails with this errno code and writes nothing. */
  failWrites: string | null = null;
  /** While set, every datasync fails with this errno code. */
  failSyncs: string | null = null;
  /** While set, every truncate fails with this errno code. */
  failTruncates: string | null = null;

  constructor(options: { capacityBytes?: number } = {}) {
    this.capacityBytes = options.capacityBytes ?? Number.POSITIVE_INFINITY;
  }

  /** Bytes held by all files now (their current, not durable, lengths). */
  usedBytes(): number {
    let total = 0;
    for (const inode of this.files.values()) total += inode.lengthBytes;
    return total;
  }

  /** Bytes that still fit under capacityBytes. */
  freeBytes(): number {
    if (this.capacityBytes === Number.POSITIVE_INFINITY) return this.capacityBytes;
    return Math.max(0, this.capacityBytes - this.usedBytes());
  }

  private norm(p: string): string {
    return path.normalize(p);
  }

  private requireParent(p: string): void {
    const parent = path.dirname(p);
    if (!this.dirs.has(parent)) throw new FsError('ENOENT', `no directory ${parent}`);
  }

  async open(p: string): Promise<LogFile> {
    const key = this.norm(p);
    let inode = this.files.get(key);
    if (!inode) {
      this.requireParent(key);
      if (this.dirs.has(key)) throw new FsError('EISDIR', key);
      inode = { data: Buffer.alloc(0), lengthBytes: 0, durable: Buffer.alloc(0) };
      this.files.set(key, inode);
    }
    return new MemoryLogFile(this, key, inode, this.generation);
  }

  async readdir(dir: string): Promise<string[]> {
    const key = this.norm(dir);
    if (!this.dirs.has(key)) throw new FsError('ENOENT', `no directory ${key}`);
    const names: string[] = [];
    for (const f of this.files.keys()) if (path.dirname(f) === key) names.push(path.basename(f));
    for (const d of this.dirs) if (d !== key && path.dirname(d) === key) names.push(path.basename(d));
    return names.sort();
  }

  async mkdir(dir: string): Promise<void> {
    let key = this.norm(dir);
    const chain: string[] = [];
    while (!this.dirs.has(key)) {
      if (this.files.has(key)) throw new FsError('EEXIST', `${key} is a file`);
      chain.push(key);
      const parent = path.dirname(key);
      if (parent === key) break;
      key = parent;
    }
    for (const d of chain) this.dirs.add(d);
  }

  async rename(fromPath: string, toPath: string): Promise<void> {
    const from = this.norm(fromPath);
    const to = this.norm(toPath);
    const inode = this.files.get(from);
    if (!inode) throw new FsError('ENOENT', from);
    this.requireParent(to);
    this.files.delete(from);
    this.files.set(to, inode);
  }

  async unlink(p: string): Promise<void> {
    const key = this.norm(p);
    if (!this.files.delete(key)) throw new FsError('ENOENT', key);
  }

  async stat(p: string): Promise<FileStat | null> {
    const key = this.norm(p);
    const inode = this.files.get(key);
    if (inode) return { sizeBytes: inode.lengthBytes, isDirectory: false };
    if (this.dirs.has(key)) return { sizeBytes: 0, isDirectory: true };
    return null;
  }

  async rmrf(dir: string): Promise<void> {
    const key = this.norm(dir);
    const prefix = key.endsWith('/') ? key : `${key}/`;
    for (const f of [...this.files.keys()]) if (f === key || f.startsWith(prefix)) this.files.delete(f);
    for (const d of [...this.dirs]) if (d === key || d.startsWith(prefix)) this.dirs.delete(d);
  }

  async fsyncDir(dir: string): Promise<void> {
    if (!this.dirs.has(this.norm(dir))) throw new FsError('ENOENT', dir);
  }

  /** Simulates power loss: every file reverts to its last-synced bytes; open handles die. */
  crash(): void {
    this.generation++;
    for (const inode of this.files.values()) {
      inode.data = Buffer.from(inode.durable);
      inode.lengthBytes = inode.durable.length;
    }
  }

  /** Bytes of `p` written but not yet made durable by datasync (0 if the file is missing). */
  unsyncedBytes(p: string): number {
    const inode = this.files.get(this.norm(p));
    if (!inode) return 0;
    return Math.max(0, inode.lengthBytes - inode.durable.length);
  }

  /** Test hook: direct access to a file's current bytes (a copy). */
  readFileSync(p: string): Buffer | null {
    const inode = this.files.get(this.norm(p));
    return inode ? Buffer.from(inode.data.subarray(0, inode.lengthBytes)) : null;
  }

  /** Test hook: replace a file's content, current and durable (simulates on-disk corruption). */
  writeFileSync(p: string, data: Buffer): void {
    const key = this.norm(p);
    this.requireParent(key);
    this.files.set(key, { data: Buffer.from(data), lengthBytes: data.length, durable: Buffer.from(data) });
  }
}
