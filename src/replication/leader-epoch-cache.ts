/**
 * LeaderEpochCache: the leader epoch -> start offset map of one partition replica (Kafka's
 * LeaderEpochFileCache and its `leader-epoch-checkpoint` file, KIP-101).
 *
 * Each entry says "the leader of epoch E wrote its first record at offset S". A leader assigns
 * (newEpoch, logEndOffset) when it takes over; a follower assigns (batch.partitionLeaderEpoch,
 * batch.baseOffset) for every batch it appends whose epoch is newer than its latest. The cache is
 * what makes truncation by epoch possible: `endOffsetFor(epoch)` answers OffsetForLeaderEpoch and
 * the leader's divergence check on Fetch (KIP-320), and a follower compares its own answer with the
 * leader's to find where their logs part (KIP-279).
 *
 * Invariants (checked by `assertValid`): epochs strictly increase, start offsets never decrease,
 * every epoch and offset is >= 0. `assign` keeps them by first removing any entry that would break
 * monotonicity (an entry with an epoch >= the new one or a start offset >= the new one), exactly
 * like Kafka's `maybeTruncateNonMonotonicEntries`. At most `entriesMax` entries are kept; beyond
 * that the oldest are dropped (a bound, not expected in practice: retention trims from the start).
 *
 * The checkpoint text format is Kafka's: a version line ("0"), a count line, then one
 * "epoch startOffset" line per entry.
 */

export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;

export interface EpochEntry {
  readonly epoch: number;
  readonly startOffset: number;
}

/** What OffsetForLeaderEpoch answers: the largest epoch <= the requested one, and where it ends. */
export interface EpochEndOffset {
  readonly epoch: number;
  readonly endOffset: number;
}

export class EpochCacheCorruptError extends Error {
  readonly code = 'EPOCH_CACHE_CORRUPT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EpochCacheCorruptError';
  }
}

const CHECKPOINT_VERSION = 0;
const ENTRIES_MAX_DEFAULT = 100_000;

function isNonNegativeInt(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

export class LeaderEpochCache {
  private entries: EpochEntry[] = [];

  constructor(
    entries: readonly EpochEntry[] = [],
    private readonly entriesMax = ENTRIES_MAX_DEFAULT,
  ) {
    for (const e of entries) this.assign(e.epoch, e.startOffset);
  }

  get size(): number {
    return this.entries.length;
  }

  list(): readonly EpochEntry[] {
    return this.entries;
  }

  latestEntry(): EpochEntry | undefined {
    return this.entries[this.entries.length - 1];
  }

  /** The latest epoch, or UNDEFINED_EPOCH when the cache is empty. */
  get latestEpoch(): number {
    return this.latestEntry()?.epoch ?? UNDEFINED_EPOCH;
  }

  /** The start offset of `epoch`, if the cache holds that epoch. */
  startOffsetOf(epoch: number): number | undefined {
    const i = this.floorIndex(epoch);
    const e = i < 0 ? undefined : this.entries[i];
    return e !== undefined && e.epoch === epoch ? e.startOffset : undefined;
  }

  /**
   * Records that `epoch` starts at `startOffset`. A no-op when the latest entry is the same epoch
   * with a start offset <= the given one (the common case: every batch of the current epoch).
   * Returns true when the cache changed (the caller then rewrites the checkpoint).
   */
  assign(epoch: number, startOffset: number): boolean {
    if (!isNonNegativeInt(epoch) || !isNonNegativeInt(startOffset)) {
      throw new RangeError(`invalid leader epoch entry (${epoch}, ${startOffset})`);
    }
    const last = this.latestEntry();
    if (last !== undefined && last.epoch === epoch && startOffset >= last.startOffset) return false;
    // Remove whatever would break monotonicity: a newer-or-equal epoch, or an entry starting at or
    // after the new one (the log below startOffset was rewritten by the new epoch).
    while (this.entries.length > 0) {
      const tail = this.entries[this.entries.length - 1]!;
      if (tail.epoch >= epoch || tail.startOffset >= startOffset) this.entries.pop();
      else break;
    }
    this.entries.push({ epoch, startOffset });
    if (this.entries.length > this.entriesMax) this.entries.splice(0, this.entries.length - this.entriesMax);
    return true;
  }

  /**
   * The end offset of `requestedEpoch` as OffsetForLeaderEpoch defines it (Kafka's
   * LeaderEpochFileCache.endOffsetFor):
   * - the latest epoch ends at `logEndOffset`;
   * - an older epoch ends where the next higher epoch in the cache starts, and the answer names the
   *   largest cached epoch <= the requested one (which differs from the request when this replica
   *   never had the requested epoch: the KIP-279 case);
   * - below every cached epoch: the requested epoch, ending at the first entry's start offset;
   * - an undefined or unknown-future epoch, or an empty cache: (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET).
   */
  endOffsetFor(requestedEpoch: number, logEndOffset: number): EpochEndOffset {
    const undefinedAnswer = { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    if (requestedEpoch === UNDEFINED_EPOCH || this.entries.length === 0) return undefinedAnswer;
    const latest = this.latestEntry()!;
    if (latest.epoch === requestedEpoch) return { epoch: requestedEpoch, endOffset: logEndOffset };
    if (requestedEpoch > latest.epoch) return undefinedAnswer;
    const floor = this.floorIndex(requestedEpoch);
    const higher = this.entries[floor + 1]!; // exists: requestedEpoch < latest.epoch
    if (floor < 0) return { epoch: requestedEpoch, endOffset: higher.startOffset };
    return { epoch: this.entries[floor]!.epoch, endOffset: higher.startOffset };
  }

  /** Drops entries starting at or after `endOffset` (the log was truncated to `endOffset`). */
  truncateFromEnd(endOffset: number): void {
    while (this.entries.length > 0 && this.entries[this.entries.length - 1]!.startOffset >= endOffset) {
      this.entries.pop();
    }
  }

  /**
   * The log now starts at `startOffset` (retention, DeleteRecords): entries wholly below it go,
   * and the entry that covers it is moved up to start there.
   */
  truncateFromStart(startOffset: number): void {
    let covering = -1;
    for (let i = 0; i < this.entries.length && this.entries[i]!.startOffset <= startOffset; i++) covering = i;
    if (covering < 0) return;
    const kept = this.entries.slice(covering);
    kept[0] = { epoch: kept[0]!.epoch, startOffset };
    this.entries = kept;
  }

  clear(): void {
    this.entries = [];
  }

  clone(): LeaderEpochCache {
    const c = new LeaderEpochCache([], this.entriesMax);
    c.entries = [...this.entries];
    return c;
  }

  assertValid(): void {
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (!isNonNegativeInt(e.epoch) || !isNonNegativeInt(e.startOffset)) {
        throw new EpochCacheCorruptError(`entry ${i} (${e.epoch}, ${e.startOffset}) is negative`);
      }
      const p = this.entries[i - 1];
      if (p !== undefined && (e.epoch <= p.epoch || e.startOffset < p.startOffset)) {
        throw new EpochCacheCorruptError(
          `entry ${i} (${e.epoch}, ${e.startOffset}) does not follow (${p.epoch}, ${p.startOffset})`,
        );
      }
    }
  }

  /** Kafka's leader-epoch-checkpoint text: "0\n<count>\n<epoch> <offset>\n...". */
  toCheckpoint(): string {
    const lines = [String(CHECKPOINT_VERSION), String(this.entries.length)];
    for (const e of this.entries) lines.push(`${e.epoch} ${e.startOffset}`);
    return `${lines.join('\n')}\n`;
  }

  /** Parses a checkpoint; every line is bounds-checked and a bad file raises EpochCacheCorruptError. */
  static fromCheckpoint(text: string, entriesMax = ENTRIES_MAX_DEFAULT): LeaderEpochCache {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const version = Number(lines[0]);
    if (lines[0] === undefined || lines[0].trim() !== String(CHECKPOINT_VERSION) || version !== 0) {
      throw new EpochCacheCorruptError(`unsupported checkpoint version ${JSON.stringify(lines[0])}`);
    }
    const countText = lines[1];
    const count = Number(countText);
    if (countText === undefined || !/^\d+$/.test(countText.trim()) || count !== lines.length - 2) {
      throw new EpochCacheCorruptError(
        `checkpoint count ${JSON.stringify(countText)} does not match its lines`,
      );
    }
    const entries: EpochEntry[] = [];
    for (let i = 2; i < lines.length; i++) {
      const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(lines[i]!);
      if (m === null) throw new EpochCacheCorruptError(`checkpoint line ${i + 1} is not "epoch offset"`);
      entries.push({ epoch: Number(m[1]), startOffset: Number(m[2]) });
    }
    const cache = new LeaderEpochCache([], entriesMax);
    cache.entries = entries;
    cache.assertValid();
    return cache;
  }

  /** Index of the last entry with epoch <= `epoch`, or -1. */
  private floorIndex(epoch: number): number {
    let lo = 0;
    let hi = this.entries.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.epoch <= epoch) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }
}
