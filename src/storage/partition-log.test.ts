import assert from 'node:assert/strict';
import { truncate as fsTruncate, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { batchSizeAt, validateBatchAt } from '../protocol/records/batch-header.js';
import {
  InvalidRecordBatchError,
  LogClosedError,
  type LogConfig,
  ManualClock,
  MemoryFileSystem,
  NodeFileSystem,
  OffsetOutOfRangeError,
  PartitionLog,
  type PartitionLogDeps,
  RecordBatchTooLargeError,
} from './index.js';
import { decodeValues, valuesBatch } from './test-batches.js';

const DIR = '/data/topic-0';
const quiet = { warn: (_msg: string) => {} };

function memDeps(
  clock = new ManualClock(),
): PartitionLogDeps & { fs: MemoryFileSystem; clock: ManualClock; warnings: string[] } {
  const warnings: string[] = [];
  return { fs: new MemoryFileSystem(), clock, logger: { warn: (m) => warnings.push(m) }, warnings };
}

async function openMem(config: Partial<LogConfig> = {}, deps = memDeps()) {
  const log = await PartitionLog.open(DIR, config, deps);
  return { log, deps };
}

/** Appends one batch per entry of `groups` (each a list of values), returns their base offsets. */
async function appendGroups(log: PartitionLog, groups: string[][], timestampMs = 0): Promise<number[]> {
  const bases: number[] = [];
  for (const g of groups) bases.push((await log.append(valuesBatch(g, timestampMs))).baseOffset);
  return bases;
}

async function readAll(
  log: PartitionLog,
  from = log.logStartOffset,
): Promise<Array<{ offset: number; value: string | null }>> {
  const out: Array<{ offset: number; value: string | null }> = [];
  let next = from;
  while (next < log.logEndOffset) {
    const r = await log.read(next, 1 << 20);
    assert.ok(r.nextOffset > next, 'read must make progress');
    out.push(...decodeValues(r.records).filter((rec) => rec.offset >= from));
    next = r.nextOffset;
  }
  return out;
}

describe('append and read', () => {
  test('round trip of real v2 batches with contiguous offsets', async () => {
    const { log } = await openMem();
    const r1 = await log.append(valuesBatch(['a', 'b', 'c'], 1000));
    assert.deepEqual(r1, {
      baseOffset: 0,
      lastOffset: 2,
      logAppendTimeMs: r1.logAppendTimeMs,
      firstBatchPosition: 0,
    });
    const r2 = await log.append(valuesBatch(['d'], 1001));
    assert.equal(r2.baseOffset, 3);
    assert.equal(r2.lastOffset, 3);
    assert.equal(r2.firstBatchPosition, batchSizeAt(valuesBatch(['a', 'b', 'c'], 1000)));
    // Two batches in one append call.
    const two = Buffer.concat([valuesBatch(['e', 'f'], 1002), valuesBatch(['g'], 1003)]);
    const r3 = await log.append(two);
    assert.equal(r3.baseOffset, 4);
    assert.equal(r3.lastOffset, 6);
    assert.equal(log.logEndOffset, 7);
    assert.equal(log.maxTimestamp, 1003);

    const all = await log.read(0, 1 << 20);
    assert.equal(all.nextOffset, 7);
    assert.deepEqual(
      decodeValues(all.records),
      ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((value, offset) => ({ offset, value })),
    );
    // Every returned batch is still a valid batch (offset patching is outside the CRC).
    let at = 0;
    while (at < all.records.length) at += validateBatchAt(all.records, at, all.records.length);

    // Mid-batch offset: the whole containing batch is returned.
    const mid = await log.read(1, 1 << 20);
    assert.equal(decodeValues(mid.records)[0]?.offset, 0);
    assert.equal(mid.nextOffset, 7);
    // At logEndOffset: empty.
    assert.deepEqual(await log.read(7, 100), { records: Buffer.alloc(0), nextOffset: 7 });
    await assert.rejects(log.read(8, 100), OffsetOutOfRangeError);
    await assert.rejects(
      log.read(-1, 100),
      (e: unknown) => e instanceof OffsetOutOfRangeError && e.code === 'OFFSET_OUT_OF_RANGE',
    );
    await log.close();
  });

  test('maxBytes, minOneBatch and maxOffset bound what a read returns', async () => {
    const { log } = await openMem();
    await appendGroups(log, [['a1', 'a2'], ['b1'], ['c1', 'c2', 'c3']]);
    const firstSize = batchSizeAt(valuesBatch(['a1', 'a2']));
    const secondSize = batchSizeAt(valuesBatch(['b1']));
    // One byte short of the first batch: minOneBatch returns exactly it, otherwise nothing.
    const one = await log.read(0, firstSize - 1);
    assert.equal(one.records.length, firstSize);
    assert.equal(one.nextOffset, 2);
    const none = await log.read(0, firstSize - 1, { minOneBatch: false });
    assert.equal(none.records.length, 0);
    assert.equal(none.nextOffset, 0);
    // Exactly two batches fit.
    const two = await log.read(0, firstSize + secondSize);
    assert.equal(two.records.length, firstSize + secondSize);
    assert.equal(two.nextOffset, 3);
    // maxOffset (exclusive) stops before the batch starting at 3.
    const hw = await log.read(0, 1 << 20, { maxOffset: 3 });
    assert.deepEqual(
      decodeValues(hw.records).map((r) => r.value),
      ['a1', 'a2', 'b1'],
    );
    assert.equal(hw.nextOffset, 3);
    assert.equal((await log.read(3, 1 << 20, { maxOffset: 3 })).records.length, 0);
    await log.close();
  });

  test('rejects malformed and oversized input', async () => {
    const { log } = await openMem({ segmentBytes: 200 });
    await assert.rejects(log.append(Buffer.alloc(10)), InvalidRecordBatchError);
    const b = valuesBatch(['x']);
    await assert.rejects(log.append(b.subarray(0, b.length - 1)), InvalidRecordBatchError);
    const big = valuesBatch(['x'.repeat(300)]);
    await assert.rejects(
      log.append(big),
      (e: unknown) => e instanceof RecordBatchTooLargeError && e.code === 'RECORD_BATCH_TOO_LARGE',
    );
    assert.equal(log.logEndOffset, 0);
    await log.close();
    await assert.rejects(log.append(valuesBatch(['y'])), LogClosedError);
  });

  test('concurrent appends serialize: offsets follow file order', async () => {
    const { log } = await openMem({ segmentBytes: 1000 });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => log.append(valuesBatch([`v${i}`, `w${i}`]))),
    );
    results.forEach((r, i) => {
      assert.equal(r.baseOffset, i * 2);
      assert.equal(r.lastOffset, i * 2 + 1);
    });
    const all = await readAll(log);
    assert.equal(all.length, 60);
    all.forEach((r, i) => {
      assert.equal(r.offset, i);
      assert.equal(r.value, `${i % 2 === 0 ? 'v' : 'w'}${Math.floor(i / 2)}`);
    });
    assert.ok(log.segmentCount > 1);
    await log.close();
  });

  test('leaderEpoch is stamped into appended batches', async () => {
    const { log } = await openMem();
    await log.append(valuesBatch(['a']), { leaderEpoch: 7 });
    const headers = [];
    for await (const h of log.batchHeaders()) headers.push(h);
    assert.equal(headers.length, 1);
    assert.equal(headers[0]?.header.partitionLeaderEpoch, 7);
    await log.close();
  });
});

describe('segments', () => {
  test('rolls by size, reads across segments, writes sealed indexes', async () => {
    const { log, deps } = await openMem({ segmentBytes: 400, indexIntervalBytes: 100 });
    const values: string[] = [];
    for (let i = 0; i < 40; i++) {
      const v = [`value-${i}-a`, `value-${i}-b`];
      values.push(...v);
      await log.append(valuesBatch(v, 1000 + i));
    }
    assert.ok(log.segmentCount >= 5, `expected several segments, got ${log.segmentCount}`);
    const bases = log.segmentBaseOffsets;
    assert.equal(bases[0], 0);
    assert.equal(log.activeSegmentBaseOffset, bases[bases.length - 1]);
    const names = await deps.fs.readdir(DIR);
    for (const base of bases.slice(0, -1)) {
      const stem = String(base).padStart(20, '0');
      assert.ok(names.includes(`${stem}.log`));
      assert.ok(names.includes(`${stem}.index`), `sealed ${stem} has an offset index`);
      assert.ok(names.includes(`${stem}.timeindex`));
    }
    let totalBytes = 0;
    for (const base of bases)
      totalBytes += deps.fs.readFileSync(path.join(DIR, `${String(base).padStart(20, '0')}.log`))!.length;
    assert.equal(log.sizeBytes, totalBytes);
    // Every offset reads back its own record, whichever segment holds it.
    for (let off = 0; off < values.length; off += 3) {
      const r = await log.read(off, 50);
      const recs = decodeValues(r.records).filter((x) => x.offset >= off);
      assert.equal(recs[0]?.value, values[off]);
      assert.equal(recs[0]?.offset, off);
    }
    assert.deepEqual(
      (await readAll(log)).map((r) => r.value),
      values,
    );
    await log.close();
  });

  test('rolls by segmentMs measured from the first append', async () => {
    const deps = memDeps();
    const { log } = await openMem({ segmentMs: 1000 }, deps);
    await log.append(valuesBatch(['a']));
    deps.clock.advance(999);
    await log.append(valuesBatch(['b']));
    assert.equal(log.segmentCount, 1);
    deps.clock.advance(2);
    await log.append(valuesBatch(['c']));
    assert.deepEqual(log.segmentBaseOffsets, [0, 2]);
    await log.close();
  });

  test('offsetForTimestamp and maxTimestampOffset', async () => {
    const { log } = await openMem({ segmentBytes: 300, indexIntervalBytes: 50 });
    // Batch i has offsets [2i, 2i+1] and timestamp 1000 + 100 i, except one out-of-order batch.
    for (let i = 0; i < 20; i++) {
      const ts = i === 7 ? 5000 : 1000 + 100 * i;
      await log.append(valuesBatch([`x${i}`, `y${i}`], ts));
    }
    assert.ok(log.segmentCount > 2);
    assert.deepEqual(await log.offsetForTimestamp(0), { offset: 0, timestamp: 1000 });
    assert.deepEqual(await log.offsetForTimestamp(1000), { offset: 0, timestamp: 1000 });
    assert.deepEqual(await log.offsetForTimestamp(1001), { offset: 2, timestamp: 1100 });
    assert.deepEqual(await log.offsetForTimestamp(1550), { offset: 12, timestamp: 1600 });
    // Batch 7 (offsets 14-15) carries 5000, which is the first >= 1750.
    assert.deepEqual(await log.offsetForTimestamp(1750), { offset: 14, timestamp: 5000 });
    assert.deepEqual(await log.offsetForTimestamp(2850), { offset: 14, timestamp: 5000 });
    assert.equal(await log.offsetForTimestamp(5001), null);
    assert.deepEqual(log.maxTimestampOffset(), { offset: 15, timestamp: 5000 });
    // After DeleteRecords the answer is clamped to logStartOffset.
    await log.deleteRecordsBefore(3);
    assert.deepEqual(await log.offsetForTimestamp(0), { offset: 3, timestamp: 1100 });
    await log.close();
  });

  test('maxTimestampOffset of an empty log', async () => {
    const { log } = await openMem();
    assert.deepEqual(log.maxTimestampOffset(), { offset: -1, timestamp: -1 });
    assert.equal(await log.offsetForTimestamp(0), null);
    await log.close();
  });
});

describe('deletion and retention', () => {
  test('deleteRecordsBefore moves logStartOffset mid-segment and drops whole segments below it', async () => {
    const deps = memDeps();
    const { log } = await openMem({ segmentBytes: 300 }, deps);
    for (let i = 0; i < 20; i++) await log.append(valuesBatch([`a${i}`, `b${i}`]));
    const bases = log.segmentBaseOffsets;
    assert.ok(bases.length >= 4);
    const target = bases[2]! + 1; // inside the third segment
    assert.equal(await log.deleteRecordsBefore(target), target);
    assert.equal(log.logStartOffset, target);
    assert.deepEqual(log.segmentBaseOffsets, bases.slice(2));
    await assert.rejects(log.read(target - 1, 1000), OffsetOutOfRangeError);
    const r = await log.read(target, 1000);
    assert.equal(decodeValues(r.records).find((x) => x.offset === target)?.offset, target);
    await assert.rejects(log.deleteRecordsBefore(log.logEndOffset + 1), OffsetOutOfRangeError);
    // Lower is a no-op.
    assert.equal(await log.deleteRecordsBefore(1), target);
    await log.close();
    // The checkpoint keeps the mid-segment start across a reopen.
    const reopened = await PartitionLog.open(DIR, { segmentBytes: 300 }, deps);
    assert.equal(reopened.logStartOffset, target);
    assert.deepEqual(reopened.segmentBaseOffsets, bases.slice(2));
    assert.equal(reopened.logEndOffset, 40);
    await reopened.close();
  });

  test('time retention deletes expired sealed segments, never the active one', async () => {
    const deps = memDeps();
    const t0 = deps.clock.nowMs();
    const { log } = await openMem({ segmentBytes: 300, retentionMs: 10_000 }, deps);
    for (let i = 0; i < 12; i++) await log.append(valuesBatch([`old${i}`], t0));
    for (let i = 0; i < 12; i++) await log.append(valuesBatch([`new${i}`], t0 + 20_000));
    const before = log.segmentBaseOffsets;
    assert.ok(before.length >= 4);
    assert.equal(await log.applyRetention(t0 + 5_000), 0);
    const deleted = await log.applyRetention(t0 + 15_000);
    assert.ok(deleted > 0);
    // Exactly the segments whose newest record is t0 went; the first remaining one holds new data
    // or mixes both.
    for (const r of await readAll(log)) assert.ok(r.offset >= log.logStartOffset);
    assert.equal(log.logStartOffset, log.segmentBaseOffsets[0]);
    assert.equal(log.segmentBaseOffsets[0], before[deleted]);
    const remaining = await readAll(log);
    assert.ok(remaining.some((r) => r.value?.startsWith('new')));
    assert.equal(remaining.at(-1)?.value, 'new11');
    // Far future: everything but the active segment goes.
    await log.applyRetention(t0 + 1_000_000);
    assert.equal(log.segmentCount, 1);
    assert.equal(log.logStartOffset, log.activeSegmentBaseOffset);
    assert.equal(log.logEndOffset, 24);
    // Unlimited retention deletes nothing.
    log.updateConfig({ retentionMs: -1 });
    assert.equal(await log.applyRetention(t0 + 10_000_000), 0);
    await log.close();
  });

  test('time retention judges untimestamped (-1) segments by their last append', async () => {
    const deps = memDeps();
    const { log } = await openMem({ segmentBytes: 200, retentionMs: 10_000 }, deps);
    for (let i = 0; i < 6; i++) await log.append(valuesBatch([`n${i}`], -1));
    deps.clock.advance(5_000);
    for (let i = 6; i < 12; i++) await log.append(valuesBatch([`n${i}`], -1));
    assert.ok(log.segmentCount >= 3);
    assert.equal(await log.applyRetention(), 0, 'no timestamps does not mean infinitely old');
    deps.clock.advance(10_001 - 5_000);
    const deleted = await log.applyRetention();
    assert.ok(deleted >= 1);
    // Only segments last appended to before now - retentionMs went.
    assert.ok(log.logStartOffset <= 6);
    await log.close();
  });

  test('size retention keeps at least retentionBytes', async () => {
    const { log } = await openMem({ segmentBytes: 300, retentionMs: -1, retentionBytes: 600 });
    for (let i = 0; i < 30; i++) await log.append(valuesBatch([`r${i}`, `s${i}`]));
    const sizeBefore = log.sizeBytes;
    assert.ok(sizeBefore > 1200);
    const deleted = await log.applyRetention();
    assert.ok(deleted > 0);
    assert.ok(log.sizeBytes >= 600, `kept ${log.sizeBytes}`);
    assert.ok(log.sizeBytes < 600 + 300, `kept ${log.sizeBytes}`);
    assert.equal(log.logStartOffset, log.segmentBaseOffsets[0]);
    const rest = await readAll(log);
    assert.equal(rest[0]?.offset, log.logStartOffset);
    assert.equal(rest.at(-1)?.offset, 59);
    await log.close();
  });

  test('truncateTo drops the tail at a batch boundary and appends continue', async () => {
    const { log } = await openMem({ segmentBytes: 300 });
    for (let i = 0; i < 20; i++) await log.append(valuesBatch([`a${i}`, `b${i}`]));
    await log.truncateTo(21); // inside batch [20, 21]: the whole batch goes
    assert.equal(log.logEndOffset, 20);
    assert.ok(log.flushedOffset <= 20);
    const r = await log.append(valuesBatch(['z']));
    assert.equal(r.baseOffset, 20);
    const all = await readAll(log);
    assert.equal(all.length, 21);
    assert.equal(all.at(-1)?.value, 'z');
    // Below logStartOffset: restart empty at that offset.
    await log.deleteRecordsBefore(10);
    await log.truncateTo(5);
    assert.equal(log.logStartOffset, 5);
    assert.equal(log.logEndOffset, 5);
    assert.equal((await log.append(valuesBatch(['q']))).baseOffset, 5);
    await log.close();
  });

  test('batchHeaders walks every batch header from an offset', async () => {
    const { log } = await openMem({ segmentBytes: 300 });
    for (let i = 0; i < 10; i++)
      await log.append(valuesBatch([`a${i}`, `b${i}`, `c${i}`], 0, { producerId: 42, baseSequence: i * 3 }));
    const seen = [];
    for await (const e of log.batchHeaders(4)) seen.push(e);
    assert.equal(seen.length, 9); // batch [3..5] contains offset 4
    assert.equal(seen[0]?.header.baseOffset, 3);
    assert.deepEqual(
      seen.map((e) => e.header.baseSequence),
      [3, 6, 9, 12, 15, 18, 21, 24, 27],
    );
    for (const e of seen) assert.equal(e.header.producerId, 42);
    assert.ok(seen.some((e) => e.segmentBaseOffset > 0));
    await log.close();
  });
});

describe('durability and recovery', () => {
  const tmpDirs: string[] = [];
  after(async () => {
    for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
  });
  async function tmp(): Promise<string> {
    const d = await mkdtemp(path.join(tmpdir(), 'sluice-storage-'));
    tmpDirs.push(d);
    return path.join(d, 'topic-0');
  }

  test('reopen after close keeps everything (real filesystem)', async () => {
    const dir = await tmp();
    const cfg = { segmentBytes: 500, indexIntervalBytes: 100 };
    const log = await PartitionLog.open(dir, cfg, { logger: quiet });
    for (let i = 0; i < 30; i++) await log.append(valuesBatch([`k${i}`, `l${i}`], 1000 + i));
    await log.deleteRecordsBefore(3);
    await log.flush();
    assert.equal(log.flushedOffset, 60);
    const before = await readAll(log);
    const bases = log.segmentBaseOffsets;
    await log.close();

    const files = await readdir(dir);
    assert.ok(files.includes('00000000000000000000.log'));
    assert.ok(files.includes('00000000000000000000.index'));
    assert.ok(files.includes('log-start-offset.checkpoint'));
    const idx = await stat(path.join(dir, '00000000000000000000.index'));
    assert.equal(idx.size % 8, 0);
    assert.ok(idx.size > 0);

    const again = await PartitionLog.open(dir, cfg, { logger: quiet });
    assert.equal(again.logEndOffset, 60);
    assert.equal(again.logStartOffset, 3);
    assert.deepEqual(again.segmentBaseOffsets, bases);
    // Sealed segments came back from their index files; only the active one was scanned.
    assert.equal(again.recovery.segmentsScanned, 1);
    assert.equal(again.recoveredBytesTruncated, 0);
    assert.deepEqual(await readAll(again), before);
    assert.deepEqual(await again.offsetForTimestamp(1010), { offset: 20, timestamp: 1010 });
    assert.equal(again.maxTimestamp, 1029);
    assert.equal((await again.append(valuesBatch(['next']))).baseOffset, 60);
    await again.delete();
    await assert.rejects(stat(dir), { code: 'ENOENT' });
  });

  test('torn tail (truncated mid-batch) is cut on open; appends continue contiguously', async () => {
    const dir = await tmp();
    const log = await PartitionLog.open(dir, {}, { logger: quiet });
    for (let i = 0; i < 5; i++) await log.append(valuesBatch([`a${i}`, `b${i}`]));
    const lastSize = batchSizeAt(valuesBatch(['a4', 'b4']));
    await log.close();
    const file = path.join(dir, '00000000000000000000.log');
    const fullSize = (await stat(file)).size;
    await fsTruncate(file, fullSize - 7);

    const warnings: string[] = [];
    const again = await PartitionLog.open(dir, {}, { logger: { warn: (m) => warnings.push(m) } });
    assert.equal(again.logEndOffset, 8);
    assert.equal(again.recoveredBytesTruncated, lastSize - 7);
    assert.equal((await stat(file)).size, fullSize - lastSize);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /truncating/);
    assert.equal((await again.append(valuesBatch(['c']))).baseOffset, 8);
    assert.deepEqual(
      (await readAll(again)).map((r) => r.offset),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    await again.close();
  });

  test('a flipped byte in the last batch fails its CRC and the batch is dropped', async () => {
    const dir = await tmp();
    const log = await PartitionLog.open(dir, {}, { logger: quiet });
    for (let i = 0; i < 4; i++) await log.append(valuesBatch([`x${i}`, `y${i}`, `z${i}`]));
    await log.close();
    const file = path.join(dir, '00000000000000000000.log');
    const bytes = await readFile(file);
    const lastSize = batchSizeAt(valuesBatch(['x3', 'y3', 'z3']));
    bytes[bytes.length - 3]! ^= 0xff;
    await writeFile(file, bytes);

    const again = await PartitionLog.open(dir, {}, { logger: quiet });
    assert.equal(again.logEndOffset, 9);
    assert.equal(again.recoveredBytesTruncated, lastSize);
    assert.equal((await again.append(valuesBatch(['w']))).baseOffset, 9);
    assert.equal((await readAll(again)).at(-1)?.value, 'w');
    await again.close();
  });

  test('garbled index files of a sealed segment are rebuilt from the log', async () => {
    const deps = memDeps();
    const cfg = { segmentBytes: 300, indexIntervalBytes: 40 };
    const { log } = await openMem(cfg, deps);
    for (let i = 0; i < 20; i++) await log.append(valuesBatch([`m${i}`], 100 + i));
    const before = await readAll(log);
    await log.close();
    deps.fs.writeFileSync(path.join(DIR, '00000000000000000000.index'), Buffer.from([1, 2, 3]));
    deps.fs.writeFileSync(path.join(DIR, '00000000000000000000.timeindex'), Buffer.alloc(0));
    const again = await PartitionLog.open(DIR, cfg, deps);
    assert.equal(again.recovery.segmentsScanned, 2);
    assert.deepEqual(await readAll(again), before);
    assert.deepEqual(await again.offsetForTimestamp(101), { offset: 1, timestamp: 101 });
    const rebuilt = deps.fs.readFileSync(path.join(DIR, '00000000000000000000.index'))!;
    assert.equal(rebuilt.length % 8, 0);
    await again.close();
  });

  test('crash drops exactly the unflushed batches (MemoryFileSystem)', async () => {
    const deps = memDeps();
    const cfg = { segmentBytes: 400 };
    const { log } = await openMem(cfg, deps);
    for (let i = 0; i < 12; i++) await log.append(valuesBatch([`d${i}`]));
    assert.equal(log.flushedOffset, log.activeSegmentBaseOffset, 'rolled segments are synced at roll');
    await log.flush();
    assert.equal(log.flushedOffset, 12);
    for (let i = 12; i < 15; i++) await log.append(valuesBatch([`d${i}`]));
    assert.equal(log.flushedOffset, 12);
    assert.ok(
      deps.fs.unsyncedBytes(path.join(DIR, `${String(log.activeSegmentBaseOffset).padStart(20, '0')}.log`)) >
        0,
    );
    deps.fs.crash();

    const again = await PartitionLog.open(DIR, cfg, deps);
    assert.equal(again.logEndOffset, 12);
    assert.deepEqual(
      (await readAll(again)).map((r) => r.value),
      Array.from({ length: 12 }, (_, i) => `d${i}`),
    );
    assert.equal((await again.append(valuesBatch(['after']))).baseOffset, 12);
    await again.close();
  });

  test('crash across a roll keeps the sealed segment (it was synced before the roll)', async () => {
    const deps = memDeps();
    const cfg = { segmentBytes: 200 };
    const { log } = await openMem(cfg, deps);
    for (let i = 0; i < 8; i++) await log.append(valuesBatch([`e${i}`]));
    const active = log.activeSegmentBaseOffset;
    assert.ok(active > 0);
    deps.fs.crash();
    const again = await PartitionLog.open(DIR, cfg, deps);
    assert.equal(again.logEndOffset, active);
    assert.equal((await readAll(again)).length, active);
    await again.close();
  });

  test('group commit: flushes that arrive during a sync share one follow-up sync', async () => {
    const deps = memDeps();
    const { log } = await openMem({}, deps);
    await log.append(valuesBatch(['a']));
    const syncsBefore = deps.fs.datasyncCount;
    const first = log.flush();
    await log.append(valuesBatch(['b']));
    await log.append(valuesBatch(['c']));
    const waiting = [log.flush(), log.flush(), log.flush(), log.flush()];
    await Promise.all([first, ...waiting]);
    assert.equal(deps.fs.datasyncCount - syncsBefore, 2, 'one sync in flight + one shared follow-up');
    assert.equal(log.flushedOffset, 3);
    await log.close();
  });
});

describe('concurrency', () => {
  test('reads in flight survive concurrent retention, DeleteRecords, appends and close', async () => {
    const deps = memDeps();
    const { log } = await openMem({ segmentBytes: 250, retentionMs: -1, retentionBytes: 300 }, deps);
    for (let i = 0; i < 40; i++) await log.append(valuesBatch([`c${i}`]));
    const ops: Promise<unknown>[] = [];
    const errors: unknown[] = [];
    for (let i = 0; i < 40; i++) {
      const offset = i;
      ops.push(
        log.read(offset, 400).then(
          (r) => {
            // Whatever a read returns must be the right records for its offset.
            for (const rec of decodeValues(r.records)) assert.equal(rec.value, `c${rec.offset}`);
          },
          (e: unknown) => {
            if (!(e instanceof OffsetOutOfRangeError)) errors.push(e);
          },
        ),
      );
      if (i === 5) ops.push(log.applyRetention());
      if (i === 10) ops.push(log.deleteRecordsBefore(30));
      if (i % 7 === 0) ops.push(log.append(valuesBatch([`c${40 + i / 7}`])));
    }
    await Promise.all(ops);
    assert.deepEqual(errors, []);
    assert.ok(log.logStartOffset >= 30);
    const all = await readAll(log);
    all.forEach((r) => assert.equal(r.value, `c${r.offset}`));
    const reads = [log.read(log.logStartOffset, 1000), log.read(log.logStartOffset, 1000)];
    await log.close();
    await Promise.all(reads);
    await assert.rejects(log.read(log.logStartOffset, 10), LogClosedError);
    await assert.rejects(log.flush(), LogClosedError);
  });

  test('batches larger than the scan chunk read back whole (real filesystem)', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'sluice-big-'));
    try {
      const log = await PartitionLog.open(
        path.join(base, 't-0'),
        { segmentBytes: 1 << 20 },
        { logger: quiet },
      );
      const big = 'x'.repeat(200_000);
      for (let i = 0; i < 6; i++) await log.append(valuesBatch([`${i}${big}`, `${i}`]));
      assert.ok(log.segmentCount >= 2);
      for (let off = 0; off < 12; off++) {
        const r = await log.read(off, 10);
        const recs = decodeValues(r.records);
        assert.equal(recs.length, 2, 'exactly one whole batch');
        assert.equal(recs[0]?.value, `${Math.floor(off / 2)}${big}`);
      }
      assert.equal(
        (await log.read(0, 1 << 20)).nextOffset,
        10,
        'the sixth batch is in the next segment / over budget',
      );
      await log.close();
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});

describe('real filesystem implementation', () => {
  test('NodeFileSystem append/read/truncate/rename', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'sluice-nodefs-'));
    try {
      const fs = new NodeFileSystem();
      await fs.mkdir(path.join(base, 'a/b'));
      const f = await fs.open(path.join(base, 'a/b/x'));
      await f.append(Buffer.from('hello '));
      await f.append(Buffer.from('world'));
      assert.equal(await f.size(), 11);
      assert.equal((await f.read(6, 100)).toString(), 'world');
      await f.truncate(5);
      await f.append(Buffer.from('!'));
      await f.datasync();
      assert.equal((await f.read(0, 100)).toString(), 'hello!');
      await f.close();
      await fs.rename(path.join(base, 'a/b/x'), path.join(base, 'a/b/y'));
      assert.deepEqual(await fs.readdir(path.join(base, 'a/b')), ['y']);
      assert.equal((await fs.stat(path.join(base, 'a/b/y')))?.sizeBytes, 6);
      assert.equal(await fs.stat(path.join(base, 'nope')), null);
      await fs.fsyncDir(path.join(base, 'a/b'));
      await fs.unlink(path.join(base, 'a/b/y'));
      await assert.rejects(fs.unlink(path.join(base, 'a/b/y')), { code: 'ENOENT' });
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
