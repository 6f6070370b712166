/**
 * SimDisk: one node's simulated durable storage for Raft state.
 *
 * Writes arrive in order (PersistWrite from RaftNode.ready()) and each completes (is written and
 * fsynced) at a scheduled tick, never before an earlier one. Only completed writes are in the
 * durable image. A crash discards the writes not yet completed — except that a random prefix of
 * them may survive, as data written but not fsynced sometimes does. Restart rebuilds the node from
 * `durableState()` only.
 *
 * Applying a write asserts the contiguity RaftNode promises: appended entries always continue the
 * durable log exactly.
 */

import type { DurableState, HardState, LogEntry, PersistWrite, Snapshot } from '../raft/raft.js';
import type { Prng } from './prng.js';

interface PendingWrite {
  readonly write: PersistWrite;
  readonly completeAtTick: number;
}

export class SimDisk {
  private hardState: HardState = { term: 0, votedFor: undefined };
  private snapshot: Snapshot | undefined;
  private entries: LogEntry[] = [];
  private pending: PendingWrite[] = [];
  writesCompletedCount = 0;

  get pendingCount(): number {
    return this.pending.length;
  }

  submit(write: PersistWrite, completeAtTick: number): void {
    const last = this.pending[this.pending.length - 1];
    const at = last === undefined ? completeAtTick : Math.max(completeAtTick, last.completeAtTick);
    this.pending.push({ write, completeAtTick: at });
  }

  /** Completes due writes in order; returns the id of the last one completed, or undefined. */
  completeDue(nowTick: number): number | undefined {
    let lastId: number | undefined;
    while (this.pending.length > 0 && this.pending[0]!.completeAtTick <= nowTick) {
      const { write } = this.pending.shift()!;
      this.apply(write);
      lastId = write.writeId;
    }
    return lastId;
  }

  /** Power loss: unsynced writes are lost, except a random prefix of them. Returns how many were lost. */
  crash(prng: Prng): number {
    const survive = prng.chance(0.3) ? prng.int(0, this.pending.length) : 0;
    for (let i = 0; i < survive; i++) this.apply(this.pending[i]!.write);
    const lost = this.pending.length - survive;
    this.pending = [];
    return lost;
  }

  durableState(): DurableState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }

  /** The durable entry at `index` (undefined when absent or inside the snapshot). */
  entry(index: number): LogEntry | undefined {
    const base = this.snapshot?.index ?? 0;
    return this.entries[index - base - 1];
  }

  get snapshotIndex(): number {
    return this.snapshot?.index ?? 0;
  }

  private lastIndex(): number {
    return this.entries[this.entries.length - 1]?.index ?? this.snapshotIndex;
  }

  private apply(w: PersistWrite): void {
    if (w.snapshot !== undefined) {
      const s = w.snapshot;
      this.entries = this.entries.filter((e) => e.index > s.index);
      // A snapshot beyond our durable entries leaves none; otherwise the kept ones must follow it.
      if (this.entries.length > 0 && this.entries[0]!.index !== s.index + 1) this.entries = [];
      this.snapshot = s;
    }
    if (w.truncateFromIndex !== undefined) {
      const from = w.truncateFromIndex;
      this.entries = this.entries.filter((e) => e.index < from);
    }
    for (const e of w.entries) {
      const expected = this.lastIndex() + 1;
      if (e.index !== expected) {
        throw new Error(
          `disk: write ${w.writeId} appends index ${e.index}, durable log ends at ${expected - 1}`,
        );
      }
      this.entries.push(e);
    }
    if (w.hardState !== undefined) this.hardState = w.hardState;
    this.writesCompletedCount++;
  }
}
