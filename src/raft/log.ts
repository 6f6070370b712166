/**
 * RaftLog: the in-memory Raft log over a snapshot base.
 *
 * The log holds entries `snapshotIndex + 1 .. lastIndex`; everything at or below `snapshotIndex`
 * has been folded into a snapshot whose last included entry had `snapshotTerm`. The durable
 * implementation (segments on a LogFileSystem) comes later and will keep this shape; the Raft
 * state machine only needs term lookup, slicing, append, conflict truncation and compaction.
 *
 * Invariants (asserted on every mutation):
 * - Indexes are contiguous: entry k sits at index snapshotIndex + 1 + k.
 * - Terms never decrease along the log, and no entry's term is below snapshotTerm.
 * - term(snapshotIndex) is snapshotTerm; term(i) is undefined below snapshotIndex (compacted) and
 *   above lastIndex (not yet written).
 */

export type NodeId = number;

/**
 * `noop` is the entry a new leader appends in its own term (Raft §8: a leader cannot know which
 * earlier entries are committed until it commits one of its own term). It carries no data and the
 * state machine skips it.
 */
export type EntryKind = 'data' | 'noop';

export interface LogEntry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

export class RaftLogError extends Error {
  readonly code = 'RAFT_LOG_INVARIANT';
  constructor(message: string) {
    super(message);
    this.name = 'RaftLogError';
  }
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new RaftLogError(message);
}

export class RaftLog {
  private base: number;
  private baseTerm: number;
  private entries: LogEntry[];

  constructor(snapshotIndex = 0, snapshotTerm = 0, entries: readonly LogEntry[] = []) {
    assert(snapshotIndex >= 0 && snapshotTerm >= 0, 'snapshot base must be non-negative');
    this.base = snapshotIndex;
    this.baseTerm = snapshotTerm;
    this.entries = [];
    for (const e of entries) this.append(e);
  }

  get snapshotIndex(): number {
    return this.base;
  }

  get snapshotTerm(): number {
    return this.baseTerm;
  }

  get firstIndex(): number {
    return this.base + 1;
  }

  get lastIndex(): number {
    return this.base + this.entries.length;
  }

  get lastTerm(): number {
    const last = this.entries[this.entries.length - 1];
    return last === undefined ? this.baseTerm : last.term;
  }

  get length(): number {
    return this.entries.length;
  }

  /** The term of the entry at `index`, or undefined when compacted away or not yet written. */
  term(index: number): number | undefined {
    if (index === this.base) return this.baseTerm;
    return this.entries[index - this.base - 1]?.term;
  }

  entry(index: number): LogEntry | undefined {
    if (index <= this.base) return undefined;
    return this.entries[index - this.base - 1];
  }

  /** Entries with fromIndex <= index < toIndexExclusive, at most countMax of them. */
  slice(fromIndex: number, toIndexExclusive: number, countMax = Number.POSITIVE_INFINITY): LogEntry[] {
    assert(fromIndex > this.base, `slice from ${fromIndex} is compacted (snapshot ${this.base})`);
    const end = Math.min(toIndexExclusive, this.lastIndex + 1, fromIndex + countMax);
    if (end <= fromIndex) return [];
    return this.entries.slice(fromIndex - this.base - 1, end - this.base - 1);
  }

  /** Appends one entry at lastIndex + 1 (the leader's path and the constructor's). */
  append(entry: LogEntry): void {
    assert(entry.index === this.lastIndex + 1, `append index ${entry.index}, expected ${this.lastIndex + 1}`);
    assert(entry.term >= this.lastTerm, `append term ${entry.term} below last term ${this.lastTerm}`);
    this.entries.push(entry);
  }

  /**
   * The follower's path: entries (contiguous, starting anywhere above the snapshot) are merged
   * into the log. An entry already present with the same term is kept; the first one whose term
   * differs truncates the log from there (Raft §5.3: "if an existing entry conflicts with a new
   * one, delete the existing entry and all that follow it"). Entries at or below the snapshot are
   * skipped: they are committed and so already match.
   *
   * Returns the lowest index whose content changed (a truncation or a new entry), or undefined
   * if the log is unchanged — a stale or duplicated AppendEntries must not truncate anything.
   */
  merge(entries: readonly LogEntry[]): {
    firstChangedIndex: number | undefined;
    truncatedFromIndex: number | undefined;
  } {
    let firstChangedIndex: number | undefined;
    let truncatedFromIndex: number | undefined;
    for (const e of entries) {
      if (e.index <= this.base) continue;
      const existing = this.term(e.index);
      if (existing === e.term) continue;
      if (existing !== undefined) {
        this.truncateFrom(e.index);
        truncatedFromIndex ??= e.index;
      }
      firstChangedIndex ??= e.index;
      this.append(e);
    }
    return { firstChangedIndex, truncatedFromIndex };
  }

  /** Deletes every entry at or above `index`. */
  truncateFrom(index: number): void {
    assert(index > this.base, `truncate at ${index} reaches into the snapshot (${this.base})`);
    if (index > this.lastIndex) return;
    this.entries.length = index - this.base - 1;
  }

  /** Discards entries up to and including `index`, which becomes the snapshot base. */
  compact(index: number): void {
    assert(
      index >= this.base && index <= this.lastIndex,
      `compact at ${index} outside ${this.base}..${this.lastIndex}`,
    );
    const term = this.term(index);
    assert(term !== undefined, `no term at ${index}`);
    this.entries = this.entries.slice(index - this.base);
    this.base = index;
    this.baseTerm = term;
  }

  /** Drops the whole log and restarts it from a snapshot received from the leader. */
  resetToSnapshot(index: number, term: number): void {
    assert(index >= 0 && term >= 0, 'snapshot base must be non-negative');
    this.entries = [];
    this.base = index;
    this.baseTerm = term;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as this one? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }

  /** The first index of the run of entries sharing the term of `index` (for conflict hints). */
  firstIndexOfTermAt(index: number): number {
    const term = this.term(index);
    if (term === undefined) return index;
    let i = index;
    while (i - 1 > this.base && this.term(i - 1) === term) i--;
    return i;
  }

  /** The last index holding an entry of `term`, or undefined if the log has none (leader hint). */
  lastIndexOfTerm(term: number): number | undefined {
    for (let i = this.lastIndex; i > this.base; i--) {
      const t = this.term(i)!;
      if (t === term) return i;
      if (t < term) return undefined;
    }
    return this.baseTerm === term ? this.base : undefined;
  }
}
