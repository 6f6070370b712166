/**
 * Log compaction (cleaner.ts through PartitionLog.clean) on a MemoryFileSystem and a manual clock.
 *
 * Goal: after compaction the latest record of every key is present, offsets and order are exactly
 * those written, logEndOffset is unchanged, reads from any offset work, tombstones stay until
 * delete.retention.ms after their batch was first cleaned and are gone after, the result survives
 * a reopen, and a crash at any point of a clean recovers to a valid log holding every key's latest
 * value. Method: write keyed batches, compact, compare the log's records (read back from every
 * offset) against the expected set computed from what was written; crash points are every
 * filesystem operation of one clean, injected by a wrapping filesystem.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  COMPRESSION_MASK,
  Compression,
  DELETE_HORIZON_FLAG,
  readBatchHeader,
} from '../protocol/records/batch-header.js';
import {
  ControlRecordType,
  decodeRecordBatches,
  encodeControlBatch,
  encodeRecordBatch,
} from '../protocol/records/record-batch.js';
import { CLEANER_CHECKPOINT } from './cleaner.js';
import type { FileStat, LogFile, LogFileSystem } from './fs.js';
import {
  type LogConfig,
  ManualClock,
  MemoryFileSystem,
  PartitionLog,
  type PartitionLogDeps,
} from './index.js';
import { type TestRecord, buildBatch } from './test-batches.js';

const DIR = '/data/compact-0';
const T0 = 1_700_000_000_000;

const COMPACT: Partial<LogConfig> = {
  compact: true,
  cleanupDelete: false,
  segmentBytes: 600,
  indexIntervalBytes: 0,
  deleteRetentionMs: 1000,
};

function deps(
  fs: LogFileSystem = new MemoryFileSystem(),
  clock = new ManualClock(T0),
): PartitionLogDeps & {
  clock: ManualClock;
  warnings: string[];
} {
  const warnings: string[] = [];
  return { fs, clock, logger: { warn: (m) => warnings.push(m) }, warnings };
}

interface Rec {
  offset: number;
  key: string | null;
  value: string | null;
}

/** Every record from `from` on, reading batch by batch (maxBytes 1: one batch per read). */
async function readAll(log: PartitionLog, from = log.logStartOffset, maxBytes = 1 << 20): Promise<Rec[]> {
  const out: Rec[] = [];
  let next = from;
  while (next < log.logEndOffset) {
    const r = await log.read(next, maxBytes);
    assert.ok(r.nextOffset > next, `read at ${next} must make progress`);
    for (const b of await decodeRecordBatches(r.records)) {
      if (b.isControl) continue;
      for (const rec of b.records) {
        if (rec.offset < from) continue;
        out.push({
          offset: rec.offset,
          key: rec.key?.toString() ?? null,
          value: rec.value?.toString() ?? null,
        });
      }
    }
    next = r.nextOffset;
  }
  return out;
}

async function appendKeyed(
  log: PartitionLog,
  recs: Array<[string | null, string | null]>,
  ts: number,
): Promise<number> {
  const batch = buildBatch(
    recs.map(([key, value]): TestRecord => ({ key, value, timestampMs: ts })),
    { baseTimestampMs: ts },
  );
  return (await log.append(batch)).baseOffset;
}

/** Latest record per key among `recs` (the compaction of a fully cleanable log), offset order. */
function latestPerKey(recs: Rec[]): Rec[] {
  const last = new Map<string | null, Rec>();
  for (const r of recs) last.set(r.key, r);
  return [...last.values()].sort((a, b) => a.offset - b.offset);
}

/** Appends `rounds` updates of keys k0..k(keys-1), one or two records per batch; returns all records. */
async function writeUpdates(
  log: PartitionLog,
  clock: ManualClock,
  rounds: number,
  keys: number,
): Promise<Rec[]> {
  const all: Rec[] = [];
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < keys; k += 2) {
      const recs: Array<[string, string]> = [[`k${k}`, `v${r}-${k}`]];
      if (k + 1 < keys) recs.push([`k${k + 1}`, `v${r}-${k + 1}`]);
      const base = await appendKeyed(log, recs, clock.nowMs());
      recs.forEach(([key, value], i) => all.push({ offset: base + i, key, value }));
      clock.advance(10);
    }
  }
  return all;
}

/** Records the cleaner may not touch: those at or after the active segment's base. */
function split(log: PartitionLog, all: Rec[]): { head: Rec[]; tail: Rec[] } {
  const end = log.activeSegmentBaseOffset;
  return { head: all.filter((r) => r.offset < end), tail: all.filter((r) => r.offset >= end) };
}

async function assertReadsFromEveryOffset(log: PartitionLog, expected: Rec[]): Promise<void> {
  for (let o = log.logStartOffset; o <= log.logEndOffset; o++) {
    const want = expected.filter((r) => r.offset >= o);
    assert.deepEqual(await readAll(log, o), want, `reading from offset ${o}`);
  }
  // One batch per read as well (maxBytes 1 with minOneBatch).
  assert.deepEqual(await readAll(log, log.logStartOffset, 1), expected);
}

describe('compaction', () => {
  test('keeps the latest record of every key at its offset; tail and logEndOffset untouched', async () => {
    const d = deps();
    const log = await PartitionLog.open(DIR, COMPACT, d);
    const all = await writeUpdates(log, d.clock, 12, 5);
    const before = log.logEndOffset;
    const segsBefore = log.segmentCount;
    assert.ok(segsBefore >= 4, `several segments (${segsBefore})`);
    const { head, tail } = split(log, all);
    const r = await log.clean(d.clock.nowMs());
    assert.equal(r.cleaned, true);
    assert.equal(log.logEndOffset, before);
    // Only records superseded inside the cleanable head go: a head record whose key reappears in
    // the tail is the latest *cleanable* one and stays (Kafka cleans up to the active segment).
    const expected = [...latestPerKey(head), ...tail];
    assert.deepEqual(await readAll(log), expected);
    assert.ok(r.recordsRemoved > 0 && r.bytesAfter < r.bytesBefore);
    await assertReadsFromEveryOffset(log, expected);
    // Groups are formed by old size (as Kafka does), so the now small segments merge next time.
    await log.clean(d.clock.nowMs(), { force: true });
    assert.ok(log.segmentCount < segsBefore, `small cleaned segments are merged (${log.segmentCount})`);
    assert.deepEqual(await readAll(log), expected);
    await assertReadsFromEveryOffset(log, expected);
    // Appends continue at the same offsets.
    assert.equal(await appendKeyed(log, [['k0', 'after']], d.clock.nowMs()), before);
    await log.close();
  });

  test('a second pass with no new dirty data does nothing; new data makes it dirty again', async () => {
    const d = deps();
    const log = await PartitionLog.open(DIR, COMPACT, d);
    await writeUpdates(log, d.clock, 10, 4);
    assert.equal((await log.clean()).cleaned, true);
    const again = await log.clean();
    assert.equal(again.cleaned, false);
    assert.equal(again.reason, 'nothing-cleanable');
    await writeUpdates(log, d.clock, 10, 4);
    const third = await log.clean();
    assert.equal(third.cleaned, true);
    assert.ok(third.recordsRemoved > 0);
    await log.close();
  });

  test('min.cleanable.dirty.ratio, min.compaction.lag.ms and max.compaction.lag.ms', async () => {
    const d = deps();
    const log = await PartitionLog.open(DIR, { ...COMPACT, minCleanableDirtyRatio: 0.9 }, d);
    await writeUpdates(log, d.clock, 10, 4);
    assert.equal((await log.clean()).cleaned, true, 'all dirty: ratio 1');
    // A little new dirty data against a large clean head stays below 0.9.
    await writeUpdates(log, d.clock, 3, 4);
    const low = await log.clean();
    assert.equal(low.reason, 'below-dirty-ratio');
    assert.ok(low.dirtyRatio > 0 && low.dirtyRatio < 0.9);
    // max.compaction.lag.ms forces it once the first dirty batch is old enough.
    log.updateConfig({ maxCompactionLagMs: 60_000 });
    assert.equal((await log.clean()).reason, 'below-dirty-ratio');
    d.clock.advance(61_000);
    assert.equal((await log.clean()).cleaned, true);
    await log.close();

    // min.compaction.lag.ms: segments holding records newer than the lag are not cleaned.
    const d2 = deps();
    const log2 = await PartitionLog.open(DIR, { ...COMPACT, minCompactionLagMs: 5_000 }, d2);
    const all = await writeUpdates(log2, d2.clock, 10, 4);
    const young = await log2.clean();
    assert.equal(young.cleaned, false);
    assert.deepEqual(await readAll(log2), all);
    d2.clock.advance(10_000);
    assert.equal((await log2.clean()).cleaned, true);
    await log2.close();
  });

  test('tombstones stay for delete.retention.ms after their first clean, then go (also across a reopen)', async () => {
    const fs = new MemoryFileSystem();
    const d = deps(fs);
    let log = await PartitionLog.open(DIR, COMPACT, d);
    await appendKeyed(
      log,
      [
        ['a', '1'],
        ['b', '1'],
      ],
      d.clock.nowMs(),
    );
    await appendKeyed(log, [['a', null]], d.clock.nowMs());
    await appendKeyed(
      log,
      [
        ['c', '1'],
        ['b', '2'],
      ],
      d.clock.nowMs(),
    );
    await writeUpdates(log, d.clock, 8, 2); // keys k0, k1: pushes the above into sealed segments
    await appendKeyed(log, [['z', 'tail']], d.clock.nowMs());
    const cleanedAt = d.clock.nowMs();
    assert.equal((await log.clean()).cleaned, true);
    let recs = await readAll(log);
    assert.deepEqual(
      recs.filter((r) => ['a', 'b', 'c'].includes(r.key ?? '')),
      [
        { offset: 2, key: 'a', value: null },
        { offset: 3, key: 'c', value: '1' },
        { offset: 4, key: 'b', value: '2' },
      ],
    );
    // The tombstone's batch now carries Kafka's delete horizon.
    const raw = (await log.read(2, 1)).records;
    const h = readBatchHeader(raw, 0);
    assert.ok((h.attributes & DELETE_HORIZON_FLAG) !== 0);
    assert.equal(h.baseTimestamp, cleanedAt + 1000);
    // Before the horizon: nothing to do, tombstone still there.
    d.clock.advance(900);
    assert.equal((await log.clean()).cleaned, false);
    assert.ok((await readAll(log)).some((r) => r.key === 'a'));
    await log.close();
    log = await PartitionLog.open(DIR, COMPACT, d);
    assert.ok(
      (await readAll(log)).some((r) => r.key === 'a'),
      'still there after reopen',
    );
    // At the horizon the delete-horizon trigger alone runs a pass, and the tombstone goes.
    d.clock.advance(100);
    const r = await log.clean();
    assert.equal(r.cleaned, true);
    assert.equal(r.tombstonesRemoved, 1);
    recs = await readAll(log);
    assert.ok(!recs.some((x) => x.key === 'a'));
    assert.ok(recs.some((x) => x.key === 'b' && x.value === '2'));
    assert.equal(log.logEndOffset, recs[recs.length - 1]!.offset + 1);
    await log.close();
  });

  test('a tombstone in the uncleaned tail is not touched, and a later value of its key survives', async () => {
    const d = deps();
    const log = await PartitionLog.open(DIR, COMPACT, d);
    await appendKeyed(log, [['a', '1']], d.clock.nowMs());
    await writeUpdates(log, d.clock, 6, 2);
    await appendKeyed(log, [['a', null]], d.clock.nowMs());
    await writeUpdates(log, d.clock, 6, 2);
    await appendKeyed(log, [['a', '2']], d.clock.nowMs());
    await writeUpdates(log, d.clock, 6, 2);
    await log.clean();
    d.clock.advance(5000);
    await log.clean(d.clock.nowMs(), { force: true });
    const a = (await readAll(log)).filter((r) => r.key === 'a');
    assert.deepEqual(
      a.map((r) => r.value),
      ['2'],
    );
    await log.close();
  });

  test('compaction survives a reopen; indexes and the checkpoint are reused', async () => {
    const fs = new MemoryFileSystem();
    const d = deps(fs);
    let log = await PartitionLog.open(DIR, COMPACT, d);
    await writeUpdates(log, d.clock, 12, 6);
    await log.clean();
    const view = await readAll(log);
    const leo = log.logEndOffset;
    const bases = log.segmentBaseOffsets;
    await log.flush();
    await log.close();
    assert.ok(fs.readFileSync(`${DIR}/${CLEANER_CHECKPOINT}`));
    log = await PartitionLog.open(DIR, COMPACT, d);
    assert.equal(log.recovery.segmentsScanned, 1, 'only the active segment is scanned');
    assert.deepEqual(log.segmentBaseOffsets, bases);
    assert.equal(log.logEndOffset, leo);
    assert.deepEqual(await readAll(log), view);
    await assertReadsFromEveryOffset(log, view);
    assert.equal((await log.clean()).reason, 'nothing-cleanable', 'checkpoint remembered');
    await log.close();
  });

  test('compressed batches are filtered and recompressed with their codec', async () => {
    const d = deps();
    const log = await PartitionLog.open(DIR, { ...COMPACT, segmentBytes: 4000 }, d);
    const codecs = [Compression.Gzip, Compression.Snappy, Compression.Lz4, Compression.Zstd];
    const written: Rec[] = [];
    for (let round = 0; round < 3; round++) {
      for (const codec of codecs) {
        const recs = [0, 1, 2, 3].map((i) => ({
          key: Buffer.from(`c${codec}-${i % 2 === 0 ? 'even' : i}`),
          value: Buffer.from(`r${round}-${i}`),
          timestamp: d.clock.nowMs(),
        }));
        const batch = await encodeRecordBatch({ records: recs, compression: codec });
        const base = (await log.append(batch)).baseOffset;
        recs.forEach((r, i) =>
          written.push({ offset: base + i, key: r.key.toString(), value: r.value.toString() }),
        );
      }
    }
    await log.append(
      await encodeRecordBatch({ records: [{ key: Buffer.from('x'), value: Buffer.from('x') }] }),
    );
    // Force everything into sealed segments by rolling via a big batch.
    log.updateConfig({ segmentBytes: 200 });
    await log.append(
      await encodeRecordBatch({ records: [{ key: Buffer.from('y'), value: Buffer.from('y') }] }),
    );
    const { head } = split(log, written);
    assert.equal(head.length, written.length);
    await log.clean(d.clock.nowMs(), { force: true });
    const got = (await readAll(log)).filter((r) => r.key?.startsWith('c'));
    assert.deepEqual(got, latestPerKey(written));
    const all = (await log.read(0, 1 << 20)).records;
    const batches = await decodeRecordBatches(all);
    for (const b of batches.filter((x) => x.records.some((r) => r.key?.toString().startsWith('c')))) {
      const codec = b.attributes & COMPRESSION_MASK;
      assert.ok(codecs.includes(codec), 'still compressed');
      for (const r of b.records) assert.ok(r.key?.toString().startsWith(`c${codec}-`), 'with its own codec');
    }
    await log.close();
  });

  test('control batches, null keys, and the last batch of each producer', async () => {
    const d = deps();
    const log = await PartitionLog.open(DIR, COMPACT, d);
    const p1 = buildBatch([{ key: 'k', value: 'p1' }], { producerId: 7, producerEpoch: 0, baseSequence: 0 });
    await log.append(p1); // offset 0
    await log.append(
      encodeControlBatch({
        type: ControlRecordType.Commit,
        coordinatorEpoch: 1,
        producerId: 9,
        producerEpoch: 0,
        timestamp: T0,
      }),
    ); // offset 1
    await log.append(
      buildBatch([
        { key: null, value: 'no key' },
        { key: 'm', value: '1' },
      ]),
    ); // 2, 3
    await log.append(
      buildBatch([
        { key: 'k', value: 'later' },
        { key: 'm', value: '2' },
      ]),
    ); // 4, 5
    await writeUpdates(log, d.clock, 6, 2);
    const r = await log.clean(d.clock.nowMs(), { force: true });
    assert.equal(r.invalidRecordsRemoved, 1);
    const headers = [];
    for await (const h of log.batchHeaders()) headers.push(h.header);
    // Producer 7's only batch lost its record but stays as an empty batch (producer state).
    const p7 = headers.find((h) => h.producerId === 7);
    assert.ok(p7);
    assert.equal(p7.baseOffset, 0);
    assert.equal(p7.recordsCount, 0);
    assert.equal(p7.baseSequence, 0);
    // The control batch is kept as it was.
    assert.ok(headers.some((h) => h.baseOffset === 1 && (h.attributes & 0x20) !== 0));
    const recs = (await readAll(log)).filter((x) => x.key === 'k' || x.key === 'm' || x.key === null);
    assert.deepEqual(recs, [
      { offset: 4, key: 'k', value: 'later' },
      { offset: 5, key: 'm', value: '2' },
    ]);
    await log.close();
  });

  test('reads in flight finish on the old segments while a clean swaps them', async () => {
    const d = deps();
    const log = await PartitionLog.open(DIR, COMPACT, d);
    const all = await writeUpdates(log, d.clock, 10, 4);
    const batchesBefore: number[] = [];
    const it = log.batchHeaders(0);
    const first = await it.next();
    assert.ok(!first.done);
    batchesBefore.push(first.value.header.baseOffset);
    const cleaning = log.clean();
    // The swap waits for this reader; it still sees every original batch.
    for await (const h of it) batchesBefore.push(h.header.baseOffset);
    const r = await cleaning;
    assert.equal(r.cleaned, true);
    assert.equal(new Set(batchesBefore).size, Math.ceil(all.length / 2));
    const { head, tail } = split(log, all);
    assert.deepEqual(await readAll(log), [...latestPerKey(head), ...tail]);
    await log.close();
  });

  test('compact,delete: retention and compaction both apply; compact only: no retention', async () => {
    const d = deps();
    const log = await PartitionLog.open(DIR, { ...COMPACT, retentionMs: 1000 }, d);
    await writeUpdates(log, d.clock, 10, 4);
    d.clock.advance(10_000);
    assert.equal(await log.applyRetention(), 0, 'compact only');
    log.updateConfig({ cleanupDelete: true });
    assert.ok((await log.applyRetention()) > 0);
    await log.close();
  });
});

// ---- crash injection ---------------------------------------------------------------------------

class Crash extends Error {}

/** Wraps a MemoryFileSystem; the `crashAt`-th mutating operation crashes it and throws. */
class CrashingFs implements LogFileSystem {
  ops = 0;
  crashAt = Number.POSITIVE_INFINITY;
  constructor(readonly mem: MemoryFileSystem) {}
  private tick(): void {
    if (++this.ops === this.crashAt) {
      this.mem.crash();
      throw new Crash(`crash at op ${this.ops}`);
    }
  }
  async open(p: string): Promise<LogFile> {
    this.tick();
    const f = await this.mem.open(p);
    const tick = () => this.tick();
    return {
      path: f.path,
      size: () => f.size(),
      read: (pos, len) => f.read(pos, len),
      close: () => f.close(),
      append: async (data) => {
        tick();
        await f.append(data);
      },
      datasync: async () => {
        tick();
        await f.datasync();
      },
      truncate: async (n) => {
        tick();
        await f.truncate(n);
      },
    };
  }
  readdir(dir: string): Promise<string[]> {
    return this.mem.readdir(dir);
  }
  mkdir(dir: string): Promise<void> {
    return this.mem.mkdir(dir);
  }
  async rename(a: string, b: string): Promise<void> {
    this.tick();
    await this.mem.rename(a, b);
  }
  async unlink(p: string): Promise<void> {
    this.tick();
    await this.mem.unlink(p);
  }
  stat(p: string): Promise<FileStat | null> {
    return this.mem.stat(p);
  }
  rmrf(dir: string): Promise<void> {
    return this.mem.rmrf(dir);
  }
  async fsyncDir(dir: string): Promise<void> {
    this.tick();
    await this.mem.fsyncDir(dir);
  }
}

describe('crash during a clean', () => {
  test('a crash at any filesystem operation of a clean recovers to a valid log with every latest value', async () => {
    // Count the operations of one clean on an identical log first.
    const build = async () => {
      const fs = new CrashingFs(new MemoryFileSystem());
      const d = deps(fs);
      const log = await PartitionLog.open(DIR, COMPACT, d);
      const all = await writeUpdates(log, d.clock, 12, 5);
      await appendKeyed(log, [['k0', null]], d.clock.nowMs()); // a tombstone among them
      all.push({ offset: log.logEndOffset - 1, key: 'k0', value: null });
      await log.flush();
      return { fs, d, log, all };
    };
    const probe = await build();
    const opsBefore = probe.fs.ops;
    await probe.log.clean();
    const opsPerClean = probe.fs.ops - opsBefore;
    const cleanView = await readAll(probe.log);
    await probe.log.close();
    assert.ok(opsPerClean > 10, `a clean does several fs operations (${opsPerClean})`);

    let swapsCompleted = 0;
    for (let k = 1; k <= opsPerClean; k++) {
      const { fs, d, log, all } = await build();
      const leo = log.logEndOffset;
      fs.crashAt = fs.ops + k;
      await assert.rejects(log.clean(), Crash, `crash point ${k}`);
      const rd = deps(fs.mem, d.clock);
      const reopened = await PartitionLog.open(DIR, COMPACT, rd);
      if (rd.warnings.some((w) => w.includes('completed an interrupted compaction'))) swapsCompleted++;
      assert.equal(reopened.logEndOffset, leo, `crash point ${k}: logEndOffset`);
      const view = await readAll(reopened);
      // Every record still there is one that was written, at its offset, in order.
      const written = new Map(all.map((r) => [r.offset, r]));
      for (const r of view)
        assert.deepEqual(written.get(r.offset), r, `crash point ${k}: offset ${r.offset}`);
      for (let i = 1; i < view.length; i++) assert.ok(view[i]!.offset > view[i - 1]!.offset);
      // Every key's latest record survived.
      for (const latest of latestPerKey(all)) {
        assert.ok(
          view.some((r) => r.offset === latest.offset),
          `crash point ${k}: latest of ${latest.key} at ${latest.offset}`,
        );
      }
      // And cleaning again converges to what an uninterrupted clean produces.
      await reopened.clean(d.clock.nowMs(), { force: true });
      assert.deepEqual(await readAll(reopened), cleanView, `crash point ${k}: re-clean`);
      await reopened.close();
    }
    assert.ok(swapsCompleted > 0, 'some crash points fell between the commit and the end of a swap');
  });
});
