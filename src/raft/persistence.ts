/**
 * WriteTracker: which of the node's persistent state is on disk, and which writes the driver owes.
 *
 * The node mutates its log and hard state in memory; every mutation since the last `take()` is
 * gathered into one PersistWrite. The driver executes writes strictly in order (write, fsync) and
 * reports each completion with `diskWritten(writeId)`. Because writes apply in order, the disk after
 * write k mirrors the in-memory log as it was when write k was taken.
 *
 * A PersistWrite applies as: store `snapshot` (and drop durable entries at or below its index),
 * then delete durable entries at or above `truncateFromIndex`, then append `entries`, then store
 * `hardState`. Entries are always contiguous with what the disk holds after the first two steps.
 *
 * `durableMatchIndex()` is the highest index up to which the disk holds exactly the current
 * in-memory log: the durable last index, lowered below any index a pending write will change.
 * A leader counts itself towards a quorum only up to it (the thesis §10.2.1: a leader may send
 * entries before writing them, but counts itself only once they are durable).
 */

import type { LogEntry, NodeId, RaftLog } from './log.js';
import type { Snapshot } from './messages.js';

export interface HardState {
  readonly term: number;
  readonly votedFor: NodeId | undefined;
}

/** What a node restarts from: exactly what its completed writes left on disk. */
export interface DurableState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot | undefined;
  /** Entries after the snapshot (or from index 1), contiguous. */
  readonly entries: readonly LogEntry[];
}

export interface PersistWrite {
  readonly writeId: number;
  readonly snapshot: Snapshot | undefined;
  readonly truncateFromIndex: number | undefined;
  readonly entries: readonly LogEntry[];
  readonly hardState: HardState | undefined;
}

interface InflightWrite {
  readonly writeId: number;
  readonly lastIndex: number;
  readonly changedFromIndex: number;
}

export class WriteTracker {
  private nextWriteId = 1;
  private durableWriteIdValue = 0;
  private durableLastIndex: number;
  private readonly inflight: InflightWrite[] = [];
  // The write being gathered.
  private hardStateDirty = false;
  private snapshot: Snapshot | undefined;
  private unstableFromIndex = Number.POSITIVE_INFINITY;

  constructor(lastIndex: number) {
    this.durableLastIndex = lastIndex;
  }

  get durableWriteId(): number {
    return this.durableWriteIdValue;
  }

  get inflightCount(): number {
    return this.inflight.length;
  }

  markHardState(): void {
    this.hardStateDirty = true;
  }

  /** Entries at or above `index` were appended or overwritten in memory. */
  markEntries(index: number): void {
    if (index < this.unstableFromIndex) this.unstableFromIndex = index;
  }

  /** A snapshot replaces the log's base. Entries it overwrites must be marked separately. */
  markSnapshot(snapshot: Snapshot): void {
    if (this.snapshot === undefined || snapshot.index >= this.snapshot.index) this.snapshot = snapshot;
  }

  get gathering(): boolean {
    return (
      this.hardStateDirty ||
      this.snapshot !== undefined ||
      this.unstableFromIndex !== Number.POSITIVE_INFINITY
    );
  }

  /** The id of the write that will hold every mutation made so far. */
  get coveringWriteId(): number {
    return this.gathering ? this.nextWriteId : this.nextWriteId - 1;
  }

  take(log: RaftLog, hardState: HardState): PersistWrite | undefined {
    if (!this.gathering) return undefined;
    const from = this.unstableFromIndex;
    const hasEntries = from !== Number.POSITIVE_INFINITY;
    const write: PersistWrite = {
      writeId: this.nextWriteId++,
      snapshot: this.snapshot,
      truncateFromIndex: hasEntries ? from : undefined,
      entries: hasEntries ? log.slice(Math.max(from, log.firstIndex), log.lastIndex + 1) : [],
      hardState: this.hardStateDirty ? hardState : undefined,
    };
    this.inflight.push({
      writeId: write.writeId,
      lastIndex: log.lastIndex,
      changedFromIndex: hasEntries ? from : Number.POSITIVE_INFINITY,
    });
    this.hardStateDirty = false;
    this.snapshot = undefined;
    this.unstableFromIndex = Number.POSITIVE_INFINITY;
    return write;
  }

  /** Writes complete in order; `writeId` and every write before it are durable. */
  completed(writeId: number): void {
    if (writeId <= this.durableWriteIdValue) return;
    if (writeId >= this.nextWriteId) throw new Error(`diskWritten(${writeId}): write was never issued`);
    while (this.inflight.length > 0 && this.inflight[0]!.writeId <= writeId) {
      this.durableLastIndex = this.inflight.shift()!.lastIndex;
    }
    this.durableWriteIdValue = writeId;
  }

  durableMatchIndex(): number {
    let m = this.durableLastIndex;
    for (const w of this.inflight) m = Math.min(m, w.changedFromIndex - 1);
    return Math.min(m, this.unstableFromIndex - 1);
  }
}
