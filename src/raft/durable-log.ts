/**
 * DurableRaftLog: RaftNode's persistent state (log, hard state, snapshot) on a LogFileSystem.
 *
 * Files in `dir`:
 * - `log-<generation>.raft`: an 8-byte header (magic "SLRL", version, 3 reserved bytes) followed by
 *   one record per log entry:
 *     u32 bodyLength | u32 crc32c(body) | body = i64 index | i64 term | u8 kind | data
 *   Appends go at the end; a truncateFromIndex cuts the file at that entry's record. Entries are
 *   contiguous and start right after the snapshot.
 * - `hardstate`: magic "SLHS", version, i64 term, i32 votedFor (-1 = none), u32 crc32c of the rest.
 * - `snapshot`: magic "SLSN", version, i64 index, i64 term, i64 log generation, u32 data length,
 *   data, u32 crc32c of the rest. The generation names the log file that continues the snapshot.
 * The two small files are replaced atomically: write `<name>.tmp`, fsync, rename, fsync the dir.
 *
 * Executing a PersistWrite (in order, as RaftNode requires; see persistence.ts):
 * - hard state first (atomic replace). A crash after it and before the log part leaves a newer
 *   term/vote with an older log, which is safe: the log only lost entries nobody was told about
 *   (RaftNode holds every acknowledgement until the whole write is reported durable).
 * - without a snapshot: truncate the file at the record of `truncateFromIndex`, append `entries`.
 *   Consecutive writes queued behind an fsync share one datasync (group commit), then each is
 *   reported done, in order.
 * - with a snapshot: a new generation. The surviving entries (durable ones after the snapshot,
 *   then the write's truncation and entries) are copied into `log-<g+1>.raft`, which is fsynced;
 *   then the snapshot file naming g+1 replaces the old one atomically — that rename is the commit
 *   point — and the old generation is unlinked. A crash anywhere leaves either the old snapshot
 *   with the old log or the new snapshot with the new log; recovery deletes the other.
 *
 * Recovery reads the hard state and snapshot (a bad one is a CorruptRaftStateError: those files
 * are never torn, because they are replaced atomically), then scans the log. The first record that
 * is torn (short), fails its CRC, does not decode, or breaks index contiguity or term order ends
 * the log: the file is truncated there, with one warning. Entries after it, if any, are lost — the
 * same rule as Kafka's active segment, and safe for Raft as long as such damage is a torn
 * unsynced tail (a node that loses fsynced entries can break quorum guarantees; the warning says
 * how many bytes were dropped so an operator can tell the difference).
 */

import * as path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { LogFile, LogFileSystem } from '../storage/fs.js';
import type { EntryKind, LogEntry, NodeId } from './log.js';
import type { Snapshot } from './messages.js';
import type { DurableState, HardState, PersistWrite } from './persistence.js';

export class CorruptRaftStateError extends Error {
  readonly code = 'CORRUPT_RAFT_STATE';
  readonly path: string;
  constructor(filePath: string, message: string, options?: { cause?: unknown }) {
    super(`${filePath}: ${message}`, options);
    this.name = 'CorruptRaftStateError';
    this.path = filePath;
  }
}

export class RaftStorageError extends Error {
  readonly code = 'RAFT_STORAGE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RaftStorageError';
  }
}

export interface DurableRaftLogOptions {
  readonly logger?: { warn(msg: string): void };
  /** Records larger than this are treated as corrupt on recovery (and refused on write). */
  readonly recordBytesMax?: number;
}

const LOG_MAGIC = Buffer.from('SLRL', 'latin1');
const HARDSTATE_MAGIC = Buffer.from('SLHS', 'latin1');
const SNAPSHOT_MAGIC = Buffer.from('SLSN', 'latin1');
const FORMAT_VERSION = 1;
const LOG_HEADER_BYTES = 8;
const RECORD_HEADER_BYTES = 8;
/** index + term + kind. */
const ENTRY_FIXED_BYTES = 17;
const HARDSTATE_FILE = 'hardstate';
const SNAPSHOT_FILE = 'snapshot';
const LOG_FILE_RE = /^log-(\d+)\.raft$/;

function logFileName(generation: number): string {
  return `log-${String(generation).padStart(10, '0')}.raft`;
}

const KIND_CODE: Record<EntryKind, number> = { data: 0, noop: 1 };

// ---------------------------------------------------------------------------------------------
// Small bounds-checked decoding helpers (all failures are CorruptRaftStateError).

class Cursor {
  offset = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly filePath: string,
    readonly end = buf.length,
  ) {}
  need(n: number, what: string): void {
    if (n < 0 || this.offset + n > this.end) {
      throw new CorruptRaftStateError(
        this.filePath,
        `truncated ${what}: need ${n} bytes at ${this.offset}, have ${this.end - this.offset}`,
      );
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.offset++]!;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  i64(what: string): number {
    this.need(8, what);
    const v = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new CorruptRaftStateError(this.filePath, `${what} ${v} out of range`);
    }
    return Number(v);
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
}

function putI64(buf: Buffer, at: number, v: number): void {
  buf.writeBigInt64BE(BigInt(v), at);
}

/** magic | version | payload | crc32c(everything before). */
function sealSmallFile(magic: Buffer, payload: Buffer): Buffer {
  const out = Buffer.alloc(magic.length + 1 + payload.length + 4);
  magic.copy(out, 0);
  out[magic.length] = FORMAT_VERSION;
  payload.copy(out, magic.length + 1);
  out.writeUInt32BE(crc32c(out.subarray(0, out.length - 4)) >>> 0, out.length - 4);
  return out;
}

/** Checks magic, version and CRC; returns a cursor over the payload. */
function openSmallFile(filePath: string, buf: Buffer, magic: Buffer): Cursor {
  const fixed = magic.length + 1 + 4;
  if (buf.length < fixed) throw new CorruptRaftStateError(filePath, `${buf.length} bytes is too short`);
  if (!buf.subarray(0, magic.length).equals(magic)) throw new CorruptRaftStateError(filePath, 'bad magic');
  const version = buf[magic.length]!;
  if (version !== FORMAT_VERSION) throw new CorruptRaftStateError(filePath, `unknown version ${version}`);
  const stored = buf.readUInt32BE(buf.length - 4);
  const actual = crc32c(buf.subarray(0, buf.length - 4)) >>> 0;
  if (stored !== actual) throw new CorruptRaftStateError(filePath, 'checksum mismatch');
  const c = new Cursor(buf, filePath, buf.length - 4);
  c.offset = magic.length + 1;
  return c;
}

export function encodeHardState(hs: HardState): Buffer {
  const p = Buffer.alloc(12);
  putI64(p, 0, hs.term);
  p.writeInt32BE(hs.votedFor ?? -1, 8);
  return sealSmallFile(HARDSTATE_MAGIC, p);
}

export function decodeHardState(filePath: string, buf: Buffer): HardState {
  const c = openSmallFile(filePath, buf, HARDSTATE_MAGIC);
  const term = c.i64('term');
  const voted = c.i32('votedFor');
  if (c.offset !== c.end) throw new CorruptRaftStateError(filePath, 'trailing bytes');
  if (voted < -1) throw new CorruptRaftStateError(filePath, `votedFor ${voted} out of range`);
  return { term, votedFor: voted === -1 ? undefined : (voted as NodeId) };
}

export function encodeSnapshotFile(s: Snapshot, generation: number): Buffer {
  const p = Buffer.alloc(28 + s.data.length);
  putI64(p, 0, s.index);
  putI64(p, 8, s.term);
  putI64(p, 16, generation);
  p.writeUInt32BE(s.data.length, 24);
  p.set(s.data, 28);
  return sealSmallFile(SNAPSHOT_MAGIC, p);
}

export function decodeSnapshotFile(
  filePath: string,
  buf: Buffer,
): { snapshot: Snapshot; generation: number } {
  const c = openSmallFile(filePath, buf, SNAPSHOT_MAGIC);
  const index = c.i64('snapshot index');
  const term = c.i64('snapshot term');
  const generation = c.i64('log generation');
  const n = c.u32('data length');
  const data = Buffer.from(c.bytes(n, 'snapshot data'));
  if (c.offset !== c.end) throw new CorruptRaftStateError(filePath, 'trailing bytes');
  return { snapshot: { index, term, data }, generation };
}

function logHeader(): Buffer {
  const h = Buffer.alloc(LOG_HEADER_BYTES);
  LOG_MAGIC.copy(h, 0);
  h[4] = FORMAT_VERSION;
  return h;
}

export function encodeEntryRecord(e: LogEntry): Buffer {
  const bodyLen = ENTRY_FIXED_BYTES + e.data.length;
  const out = Buffer.alloc(RECORD_HEADER_BYTES + bodyLen);
  out.writeUInt32BE(bodyLen, 0);
  putI64(out, 8, e.index);
  putI64(out, 16, e.term);
  out[24] = KIND_CODE[e.kind];
  out.set(e.data, 25);
  out.writeUInt32BE(crc32c(out.subarray(RECORD_HEADER_BYTES)) >>> 0, 4);
  return out;
}

/**
 * Decodes the record at `at`; returns the entry and the record's length, or a reason it is bad
 * (torn, checksum, malformed). Never reads outside `buf`.
 */
function decodeEntryRecord(
  filePath: string,
  buf: Buffer,
  at: number,
  recordBytesMax: number,
): { entry: LogEntry; bytes: number } | { bad: string } {
  if (buf.length - at < RECORD_HEADER_BYTES) return { bad: 'torn record header' };
  const bodyLen = buf.readUInt32BE(at);
  if (bodyLen < ENTRY_FIXED_BYTES || bodyLen > recordBytesMax) return { bad: `record length ${bodyLen}` };
  if (buf.length - at - RECORD_HEADER_BYTES < bodyLen) return { bad: 'torn record body' };
  const body = buf.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + bodyLen);
  if (buf.readUInt32BE(at + 4) !== crc32c(body) >>> 0) return { bad: 'checksum mismatch' };
  try {
    const c = new Cursor(body, filePath);
    const index = c.i64('entry index');
    const term = c.i64('entry term');
    const kindCode = c.u8('entry kind');
    const kind: EntryKind | undefined = kindCode === 0 ? 'data' : kindCode === 1 ? 'noop' : undefined;
    if (kind === undefined) return { bad: `unknown entry kind ${kindCode}` };
    const data = Buffer.from(body.subarray(c.offset));
    return { entry: { index, term, kind, data }, bytes: RECORD_HEADER_BYTES + bodyLen };
  } catch (err) {
    return { bad: (err as Error).message };
  }
}

// ---------------------------------------------------------------------------------------------

interface QueuedWrite {
  readonly write: PersistWrite;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class DurableRaftLog {
  private readonly fs: LogFileSystem;
  readonly dir: string;
  private readonly logger: { warn(msg: string): void };
  private readonly recordBytesMax: number;

  private file: LogFile | undefined;
  private generation = 0;
  private snapshotIndex = 0;
  private snapshotTerm = 0;
  /** positions[k]: byte offset of the record of entry snapshotIndex + 1 + k. */
  private positions: number[] = [];
  /** lastTerms: the term of the last durable entry (or the snapshot's). */
  private lastTerm = 0;
  private fileEnd = 0;
  private hardState: HardState = { term: 0, votedFor: undefined };

  private readonly queue: QueuedWrite[] = [];
  private running = false;
  private failed: unknown;
  private closed = false;
  /** Counters for tests and metrics. */
  datasyncCount = 0;
  writesCount = 0;
  generationsCount = 0;

  constructor(fs: LogFileSystem, dir: string, options: DurableRaftLogOptions = {}) {
    this.fs = fs;
    this.dir = dir;
    this.logger = options.logger ?? { warn: (msg) => console.warn(msg) };
    this.recordBytesMax = options.recordBytesMax ?? 64 * 1024 * 1024;
  }

  get lastIndex(): number {
    return this.snapshotIndex + this.positions.length;
  }

  get logGeneration(): number {
    return this.generation;
  }

  /** Reads the store (creating an empty one if missing) and repairs a torn log tail. Call once. */
  async recover(): Promise<DurableState> {
    if (this.file !== undefined) throw new RaftStorageError('recover() called twice');
    await this.fs.mkdir(this.dir);
    let names = await this.fs.readdir(this.dir);
    for (const n of names) if (n.endsWith('.tmp')) await this.fs.unlink(path.join(this.dir, n));

    const hsBuf = await this.readWhole(HARDSTATE_FILE);
    if (hsBuf !== undefined) this.hardState = decodeHardState(this.pathOf(HARDSTATE_FILE), hsBuf);

    let snapshot: Snapshot | undefined;
    const snapBuf = await this.readWhole(SNAPSHOT_FILE);
    if (snapBuf !== undefined) {
      const decoded = decodeSnapshotFile(this.pathOf(SNAPSHOT_FILE), snapBuf);
      snapshot = decoded.snapshot;
      this.generation = decoded.generation;
      this.snapshotIndex = snapshot.index;
      this.snapshotTerm = snapshot.term;
    }
    this.lastTerm = this.snapshotTerm;

    // Leftover generations: older ones whose unlink did not happen, or a newer one whose snapshot
    // rename did not happen. Only the one the snapshot names is live.
    names = await this.fs.readdir(this.dir);
    const live = logFileName(this.generation);
    for (const n of names) {
      if (LOG_FILE_RE.test(n) && n !== live) await this.fs.unlink(path.join(this.dir, n));
    }

    const logPath = this.pathOf(live);
    const existed = names.includes(live);
    if (!existed && this.generation !== 0) {
      this.logger.warn(`[raft ${this.dir}] ${live} named by the snapshot is missing; starting an empty log`);
    }
    const file = await this.fs.open(logPath);
    this.file = file;
    const size = await file.size();
    const buf = size > 0 ? await file.read(0, size) : Buffer.alloc(0);
    if (buf.length < LOG_HEADER_BYTES) {
      // New, or its header never made it to disk: nothing in it was ever acknowledged.
      await file.truncate(0);
      await file.append(logHeader());
      await file.datasync();
      await this.fs.fsyncDir(this.dir);
      this.fileEnd = LOG_HEADER_BYTES;
      return { hardState: this.hardState, snapshot, entries: [] };
    }
    if (!buf.subarray(0, 4).equals(LOG_MAGIC)) throw new CorruptRaftStateError(logPath, 'bad log magic');
    if (buf[4] !== FORMAT_VERSION) throw new CorruptRaftStateError(logPath, `unknown log version ${buf[4]}`);

    const entries: LogEntry[] = [];
    let at = LOG_HEADER_BYTES;
    let bad: string | undefined;
    while (at < buf.length) {
      const r = decodeEntryRecord(logPath, buf, at, this.recordBytesMax);
      if ('bad' in r) {
        bad = r.bad;
        break;
      }
      const expected = this.snapshotIndex + entries.length + 1;
      if (r.entry.index !== expected) {
        bad = `entry index ${r.entry.index}, expected ${expected}`;
        break;
      }
      if (r.entry.term < this.lastTerm) {
        bad = `entry ${r.entry.index} has term ${r.entry.term} below ${this.lastTerm}`;
        break;
      }
      entries.push(r.entry);
      this.positions.push(at);
      this.lastTerm = r.entry.term;
      at += r.bytes;
    }
    if (bad !== undefined) {
      this.logger.warn(
        `[raft ${this.dir}] ${live}: ${bad} at byte ${at}; truncating ${buf.length - at} bytes ` +
          `(log now ends at index ${this.lastIndex})`,
      );
      await file.truncate(at);
      await file.datasync();
    }
    this.fileEnd = at;
    return { hardState: this.hardState, snapshot, entries };
  }

  /**
   * Executes one PersistWrite; resolves once it and every write before it are durable. Writes run
   * strictly in submission order. After an I/O failure the store refuses all further writes.
   */
  write(w: PersistWrite): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.closed) return reject(new RaftStorageError('store is closed'));
      if (this.failed !== undefined) return reject(this.failed);
      this.queue.push({ write: w, resolve, reject });
      if (!this.running) void this.run();
    });
  }

  /** Waits for queued writes, then closes the file. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await new Promise((r) => setTimeout(r, 1));
    const f = this.file;
    this.file = undefined;
    if (f !== undefined) await f.close().catch(() => {});
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        // Gather writes up to (not including) the next snapshot write; a snapshot write goes alone.
        const batch: QueuedWrite[] = [];
        if (this.queue[0]!.write.snapshot !== undefined) batch.push(this.queue.shift()!);
        else {
          while (this.queue.length > 0 && this.queue[0]!.write.snapshot === undefined) {
            batch.push(this.queue.shift()!);
          }
        }
        try {
          if (this.file === undefined) throw new RaftStorageError('store is not open (call recover())');
          if (batch[0]!.write.snapshot !== undefined) await this.applySnapshotWrite(batch[0]!.write);
          else await this.applyBatch(batch.map((q) => q.write));
        } catch (err) {
          const e =
            err instanceof RaftStorageError
              ? err
              : new RaftStorageError('raft log write failed', { cause: err });
          this.failed = e;
          for (const q of batch) q.reject(e);
          for (const q of this.queue.splice(0)) q.reject(e);
          return;
        }
        this.writesCount += batch.length;
        for (const q of batch) q.resolve();
      }
    } finally {
      this.running = false;
    }
  }

  private async applyBatch(writes: readonly PersistWrite[]): Promise<void> {
    let hs: HardState | undefined;
    for (const w of writes) if (w.hardState !== undefined) hs = w.hardState;
    if (hs !== undefined) await this.writeHardState(hs);
    const file = this.file!;
    let dirty = false;
    for (const w of writes) {
      if (w.truncateFromIndex !== undefined && w.truncateFromIndex <= this.lastIndex) {
        // As SimDisk: entries at or above `from` go; none of the durable ones lie below the snapshot.
        const from = Math.max(w.truncateFromIndex, this.snapshotIndex + 1);
        const k = from - this.snapshotIndex - 1;
        const pos = this.positions[k]!;
        await file.truncate(pos);
        this.positions.length = k;
        this.fileEnd = pos;
        this.lastTerm = k === 0 ? this.snapshotTerm : await this.termAtPosition(this.positions[k - 1]!);
        dirty = true;
      }
      if (w.entries.length > 0) {
        const parts: Buffer[] = [];
        const starts: number[] = [];
        let pos = this.fileEnd;
        let lastTerm = this.lastTerm;
        for (const e of w.entries) {
          const expected = this.lastIndex + parts.length + 1;
          if (e.index !== expected) {
            throw new RaftStorageError(`write ${w.writeId} appends index ${e.index}, expected ${expected}`);
          }
          if (e.term < lastTerm)
            throw new RaftStorageError(`write ${w.writeId}: term goes back at ${e.index}`);
          const rec = encodeEntryRecord(e);
          if (rec.length - RECORD_HEADER_BYTES > this.recordBytesMax) {
            throw new RaftStorageError(`entry ${e.index} of ${rec.length} bytes exceeds the record limit`);
          }
          parts.push(rec);
          starts.push(pos);
          pos += rec.length;
          lastTerm = e.term;
        }
        await file.append(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
        this.positions.push(...starts);
        this.fileEnd = pos;
        this.lastTerm = lastTerm;
        dirty = true;
      }
    }
    if (dirty) {
      await file.datasync();
      this.datasyncCount++;
    }
  }

  private async termAtPosition(pos: number): Promise<number> {
    const b = await this.file!.read(pos + RECORD_HEADER_BYTES + 8, 8);
    if (b.length < 8) throw new RaftStorageError(`short read at ${pos}`);
    return Number(b.readBigInt64BE(0));
  }

  private async applySnapshotWrite(w: PersistWrite): Promise<void> {
    const snap = w.snapshot!;
    if (w.hardState !== undefined) await this.writeHardState(w.hardState);
    const old = this.file!;
    // Durable entries that survive the snapshot: those after it, when they continue it.
    let keepFrom = this.fileEnd;
    let kept = 0;
    if (snap.index >= this.snapshotIndex && snap.index < this.lastIndex) {
      const k = snap.index - this.snapshotIndex; // position index of entry snap.index + 1
      const termAtSnap =
        snap.index === this.snapshotIndex
          ? this.snapshotTerm
          : await this.termAtPosition(this.positions[k - 1]!);
      if (termAtSnap === snap.term) {
        keepFrom = this.positions[k]!;
        kept = this.positions.length - k;
      }
    }
    // Then the write's own truncation.
    if (w.truncateFromIndex !== undefined) {
      const cut = w.truncateFromIndex - snap.index - 1;
      if (cut < kept) kept = Math.max(0, cut);
    }
    const keptEnd = kept === 0 ? keepFrom : this.endOfEntry(snap.index + kept);
    const keptBytes = kept === 0 ? Buffer.alloc(0) : await old.read(keepFrom, keptEnd - keepFrom);
    if (keptBytes.length !== keptEnd - keepFrom) throw new RaftStorageError('short read while compacting');

    const nextGen = this.generation + 1;
    const nextPath = this.pathOf(logFileName(nextGen));
    if ((await this.fs.stat(nextPath)) !== null) await this.fs.unlink(nextPath);
    const next = await this.fs.open(nextPath);
    try {
      const positions: number[] = [];
      const parts: Buffer[] = [logHeader(), keptBytes];
      let pos = LOG_HEADER_BYTES;
      // Rebase kept record positions.
      for (let i = 0; i < kept; i++) {
        const oldPos = this.positions[snap.index - this.snapshotIndex + i]!;
        positions.push(LOG_HEADER_BYTES + (oldPos - keepFrom));
      }
      pos += keptBytes.length;
      let lastTerm =
        kept === 0
          ? snap.term
          : await this.termAtPosition(this.positions[snap.index - this.snapshotIndex + kept - 1]!);
      for (const e of w.entries) {
        const expected = snap.index + positions.length + 1;
        if (e.index <= snap.index) continue;
        if (e.index !== expected) {
          throw new RaftStorageError(`write ${w.writeId} appends index ${e.index}, expected ${expected}`);
        }
        if (e.term < lastTerm) throw new RaftStorageError(`write ${w.writeId}: term goes back at ${e.index}`);
        const rec = encodeEntryRecord(e);
        parts.push(rec);
        positions.push(pos);
        pos += rec.length;
        lastTerm = e.term;
      }
      await next.append(Buffer.concat(parts));
      await next.datasync();
      this.datasyncCount++;
      await this.fs.fsyncDir(this.dir);
      // Commit point.
      await this.replaceFile(SNAPSHOT_FILE, encodeSnapshotFile(snap, nextGen));
      this.file = next;
      const oldGen = this.generation;
      this.generation = nextGen;
      this.generationsCount++;
      this.snapshotIndex = snap.index;
      this.snapshotTerm = snap.term;
      this.positions = positions;
      this.fileEnd = pos;
      this.lastTerm = lastTerm;
      await old.close().catch(() => {});
      await this.fs.unlink(this.pathOf(logFileName(oldGen))).catch(() => {});
    } catch (err) {
      if (this.file !== next) await next.close().catch(() => {});
      throw err;
    }
  }

  /** Byte offset just past the record of entry `index` (which must be durable). */
  private endOfEntry(index: number): number {
    const k = index - this.snapshotIndex; // position index of index + 1
    return k < this.positions.length ? this.positions[k]! : this.fileEnd;
  }

  private async writeHardState(hs: HardState): Promise<void> {
    if (hs.term === this.hardState.term && hs.votedFor === this.hardState.votedFor) return;
    await this.replaceFile(HARDSTATE_FILE, encodeHardState(hs));
    this.hardState = hs;
  }

  private async replaceFile(name: string, content: Buffer): Promise<void> {
    const tmp = this.pathOf(`${name}.tmp`);
    try {
      const f = await this.fs.open(tmp);
      try {
        await f.truncate(0);
        await f.append(content);
        await f.datasync();
        this.datasyncCount++;
      } finally {
        await f.close();
      }
      await this.fs.rename(tmp, this.pathOf(name));
    } catch (err) {
      // The old file is untouched; do not keep holding the space a full disk lacks.
      await this.fs.unlink(tmp).catch(() => {});
      throw err;
    }
    await this.fs.fsyncDir(this.dir);
  }

  private async readWhole(name: string): Promise<Buffer | undefined> {
    const p = this.pathOf(name);
    const st = await this.fs.stat(p);
    if (st === null) return undefined;
    const f = await this.fs.open(p);
    try {
      const size = await f.size();
      return await f.read(0, size);
    } finally {
      await f.close();
    }
  }

  private pathOf(name: string): string {
    return path.join(this.dir, name);
  }
}
