/**
 * A full (or failing) disk under PartitionLog, on a MemoryFileSystem with a byte budget
 * (`capacityBytes`) and injected errno failures. What must hold:
 * - a failed append rejects with a StorageIoError naming the errno (ioCode), and leaves the log as
 *   it was: logEndOffset, flushedOffset, segments, indexes, and the files on disk;
 * - readers never see any of a failed append, not even while it is being written;
 * - once space is back the next append lands at the same offset, and reopening (clean or after a
 *   crash) yields exactly the acknowledged batches;
 * - when the undo itself cannot reach the disk, appends keep failing until it can, then go on.
 */

import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { completeBatchOffsets } from '../protocol/records/record-batch.js';
import { readLogStartCheckpoint, writeLogStartCheckpoint } from './checkpoint.js';
import {
  type LogConfig,
  ManualClock,
  MemoryFileSystem,
  PartitionLog,
  StorageIoError,
  segmentFileName,
} from './index.js';
import { decodeValues, valuesBatch } from './test-batches.js';

const DIR = '/data/full-0';

function setup(config: Partial<LogConfig> = {}) {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock(1_000_000);
  const warnings: string[] = [];
  const deps = { fs, clock, logger: { warn: (m: string) => warnings.push(m) }, readPool: null };
  const cfg: Partial<LogConfig> = { retentionMs: -1, ...config };
  return {
    fs,
    clock,
    warnings,
    cfg,
    open: () => PartitionLog.open(DIR, cfg, deps),
  };
}

let counter = 0;
function batchOf(n: number, bytes = 40): { buf: Buffer; values: string[] } {
  const values = Array.from({ length: n }, () => `v${counter++}-`.padEnd(bytes, 'x'));
  return { buf: valuesBatch(values, 1_000_000), values };
}

async function readAll(log: PartitionLog): Promise<Array<{ offset: number; value: string | null }>> {
  const out: Array<{ offset: number; value: string | null }> = [];
  let next = log.logStartOffset;
  while (next < log.logEndOffset) {
    const r = await log.read(next, 1 << 20);
    assert.ok(r.nextOffset > next, 'read makes progress');
    out.push(...decodeValues(r.records).filter((x) => x.offset >= next));
    next = r.nextOffset;
  }
  return out;
}

/** Every segment's .log file is a whole number of batches. */
function assertFilesClean(fs: MemoryFileSystem, log: PartitionLog): void {
  for (const base of log.segmentBaseOffsets) {
    const buf = fs.readFileSync(path.join(DIR, segmentFileName(base, '.log')))!;
    const spans = completeBatchOffsets(buf);
    const last = spans[spans.length - 1];
    assert.equal(last ? last.at + last.size : 0, buf.length, `segment ${base} ends on a batch boundary`);
  }
}

async function assertStorageError(p: Promise<unknown>, ioCode: string): Promise<StorageIoError> {
  const err = await p.then(
    () => assert.fail('the append should have failed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof StorageIoError, `a StorageIoError, got ${String(err)}`);
  assert.equal(err.ioCode, ioCode);
  return err;
}

describe('a full disk under PartitionLog', () => {
  test('ENOSPC in the middle of a batch: rejected with the code, state and files as before', async () => {
    const s = setup();
    const log = await s.open();
    const a = batchOf(3);
    await log.append(a.buf);
    await log.flush();
    const before = {
      end: log.logEndOffset,
      flushed: log.flushedOffset,
      size: log.sizeBytes,
      file: s.fs.readFileSync(path.join(DIR, segmentFileName(0, '.log')))!,
    };
    const b = batchOf(3);
    s.fs.capacityBytes = s.fs.usedBytes() + Math.floor(b.buf.length / 2);
    const err = await assertStorageError(log.append(b.buf), 'ENOSPC');
    assert.match(err.message, /ENOSPC/);
    assert.equal(log.logEndOffset, before.end);
    assert.equal(log.flushedOffset, before.flushed);
    assert.equal(log.sizeBytes, before.size);
    assert.deepEqual(s.fs.readFileSync(path.join(DIR, segmentFileName(0, '.log'))), before.file);
    assert.deepEqual(
      (await readAll(log)).map((r) => r.value),
      a.values,
    );
    // Still full: fails again, the same way.
    await assertStorageError(log.append(batchOf(1).buf), 'ENOSPC');
    // Space freed: the next append takes the offset the failed one would have had.
    s.fs.capacityBytes = Number.POSITIVE_INFINITY;
    const c = batchOf(2);
    assert.equal((await log.append(c.buf)).baseOffset, before.end);
    assert.deepEqual(
      (await readAll(log)).map((r) => r.value),
      [...a.values, ...c.values],
    );
    await log.close();
    const again = await s.open();
    assert.equal(again.recoveredBytesTruncated, 0);
    assert.deepEqual(
      (await readAll(again)).map((r) => r.value),
      [...a.values, ...c.values],
    );
    assertFilesClean(s.fs, again);
    await again.close();
  });

  test('EIO and EDQUOT are reported with their codes too', async () => {
    const s = setup();
    const log = await s.open();
    await log.append(batchOf(2).buf);
    s.fs.failWrites = 'EIO';
    await assertStorageError(log.append(batchOf(2).buf), 'EIO');
    s.fs.failWrites = 'EDQUOT';
    await assertStorageError(log.append(batchOf(2).buf), 'EDQUOT');
    s.fs.failWrites = null;
    assert.equal((await log.append(batchOf(1).buf)).baseOffset, 2);
    await log.close();
  });

  test('an append that spans a roll and fails in its second segment is undone whole', async () => {
    const s = setup({ segmentBytes: 400, indexIntervalBytes: 0 });
    const log = await s.open();
    const a = batchOf(2); // 155 bytes
    await log.append(a.buf);
    const segmentsBefore = log.segmentBaseOffsets;
    const endBefore = log.logEndOffset;
    // Three batches of 155 bytes: the first fits the active segment, then a roll.
    const parts = [batchOf(2), batchOf(2), batchOf(2)];
    const all = Buffer.concat(parts.map((p) => p.buf));
    const firstRunBytes = parts[0]!.buf.length;
    // Room for the first run and the roll's index files, not for the rest.
    s.fs.capacityBytes = s.fs.usedBytes() + firstRunBytes + 100;
    const err = await assertStorageError(log.append(all), 'ENOSPC');
    assert.match(err.message, new RegExp(segmentFileName(endBefore + 2, '.log')), 'failed after the roll');
    assert.equal(log.logEndOffset, endBefore);
    assert.deepEqual(log.segmentBaseOffsets, segmentsBefore);
    assert.deepEqual(
      (await readAll(log)).map((r) => r.value),
      a.values,
    );
    // No segment, index or temp file of the failed append is left.
    for (const base of [endBefore, endBefore + 2]) {
      assert.equal(await s.fs.stat(path.join(DIR, segmentFileName(base, '.log'))), null);
    }
    assert.equal(await s.fs.stat(path.join(DIR, segmentFileName(0, '.index'))), null);
    assert.deepEqual(
      (await s.fs.readdir(DIR)).filter((n) => n.endsWith('.tmp')),
      [],
    );
    s.fs.capacityBytes = Number.POSITIVE_INFINITY;
    const r = await log.append(all);
    assert.equal(r.baseOffset, endBefore);
    const expected = [...a.values, ...parts.flatMap((p) => p.values)];
    assert.deepEqual(
      (await readAll(log)).map((x) => x.value),
      expected,
    );
    await log.close();
    const again = await s.open();
    assert.equal(again.recoveredBytesTruncated, 0);
    assert.deepEqual(
      (await readAll(again)).map((x) => x.value),
      expected,
    );
    assertFilesClean(s.fs, again);
    await again.close();
  });

  test('a roll whose index files do not fit fails cleanly', async () => {
    const s = setup({ segmentBytes: 300, indexIntervalBytes: 0 });
    const log = await s.open();
    const a = batchOf(2);
    await log.append(a.buf); // ~200 bytes: the next batch rolls
    s.fs.capacityBytes = s.fs.usedBytes() + 4; // not even the offset index fits
    await assertStorageError(log.append(batchOf(2).buf), 'ENOSPC');
    assert.deepEqual(log.segmentBaseOffsets, [0]);
    assert.equal(log.logEndOffset, 2);
    assert.deepEqual(
      (await s.fs.readdir(DIR)).filter((n) => n.endsWith('.tmp') || n.endsWith('index')),
      [],
    );
    s.fs.capacityBytes = Number.POSITIVE_INFINITY;
    const b = batchOf(2);
    assert.equal((await log.append(b.buf)).baseOffset, 2);
    assert.deepEqual(log.segmentBaseOffsets, [0, 2]);
    await log.close();
    const again = await s.open();
    assert.deepEqual(
      (await readAll(again)).map((x) => x.value),
      [...a.values, ...b.values],
    );
    await again.close();
  });

  test('readers never see a failing append, even while it is being written', async () => {
    const s = setup({ segmentBytes: 400 });
    const log = await s.open();
    const a = batchOf(2);
    await log.append(a.buf);
    // The first batch fills the active segment, then a roll, then the rest does not fit.
    const parts = [batchOf(2), batchOf(2), batchOf(2), batchOf(2)];
    s.fs.capacityBytes = s.fs.usedBytes() + parts[0]!.buf.length + 100;
    let done = false;
    const seen: number[] = [];
    const reader = (async () => {
      while (!done) {
        const r = await log.read(log.logStartOffset, 1 << 20);
        for (const x of decodeValues(r.records)) seen.push(x.offset);
        seen.push(log.logEndOffset - 1);
        await new Promise((res) => setImmediate(res));
      }
    })();
    const err = await assertStorageError(log.append(Buffer.concat(parts.map((p) => p.buf))), 'ENOSPC');
    assert.match(err.message, new RegExp(segmentFileName(4, '.log')), 'failed after the roll');
    done = true;
    await reader;
    assert.ok(seen.length > 0);
    assert.ok(Math.max(...seen) < 2, `a reader saw offset ${Math.max(...seen)} of the failed append`);
    await log.close();
  });

  test('when the undo cannot cut the file, appends fail until it can, then continue at the right offset', async () => {
    const s = setup();
    const log = await s.open();
    const a = batchOf(2);
    await log.append(a.buf);
    const b = batchOf(4);
    s.fs.capacityBytes = s.fs.usedBytes() + 30;
    s.fs.failTruncates = 'EIO';
    await assertStorageError(log.append(b.buf), 'ENOSPC');
    assert.ok(s.warnings.some((w) => /could not undo a failed append/.test(w)));
    // Space is back, but the torn tail is still on disk: no append may go after it.
    s.fs.capacityBytes = Number.POSITIVE_INFINITY;
    await assertStorageError(log.append(batchOf(1).buf), 'EIO');
    assert.equal(log.logEndOffset, 2);
    assert.deepEqual(
      (await readAll(log)).map((x) => x.value),
      a.values,
    );
    s.fs.failTruncates = null;
    const c = batchOf(3);
    assert.equal((await log.append(c.buf)).baseOffset, 2);
    await log.flush();
    await log.close();
    const again = await s.open();
    assert.equal(again.recoveredBytesTruncated, 0);
    assert.deepEqual(
      (await readAll(again)).map((x) => x.value),
      [...a.values, ...c.values],
    );
    assertFilesClean(s.fs, again);
    await again.close();
  });

  test('a crash while the torn tail could not be cut: recovery cuts it', async () => {
    const s = setup();
    const log = await s.open();
    const a = batchOf(2);
    await log.append(a.buf);
    await log.flush();
    s.fs.capacityBytes = s.fs.usedBytes() + 30;
    s.fs.failTruncates = 'EIO';
    await assertStorageError(log.append(batchOf(4).buf), 'ENOSPC');
    s.fs.failTruncates = null;
    s.fs.capacityBytes = Number.POSITIVE_INFINITY;
    // The partial bytes were never synced, but a real page cache may well have kept them.
    const logPath = path.join(DIR, segmentFileName(0, '.log'));
    s.fs.writeFileSync(logPath, s.fs.readFileSync(logPath)!);
    s.fs.crash();
    const again = await s.open();
    assert.equal(again.recoveredBytesTruncated, 30);
    assert.deepEqual(
      (await readAll(again)).map((x) => x.value),
      a.values,
    );
    assert.equal((await again.append(batchOf(1).buf)).baseOffset, 2);
    await again.close();
  });

  test('retention frees space on a full disk (the checkpoint is written once the segments are gone)', async () => {
    const s = setup({ segmentBytes: 400, retentionBytes: 400 });
    const log = await s.open();
    const kept: string[] = [];
    for (let i = 0; i < 8; i++) {
      const b = batchOf(2);
      await log.append(b.buf);
      kept.push(...b.values);
    }
    assert.ok(log.segmentCount >= 4);
    s.fs.capacityBytes = s.fs.usedBytes(); // completely full
    await assertStorageError(log.append(batchOf(1).buf), 'ENOSPC');
    const deleted = await log.applyRetention();
    assert.ok(deleted > 0, 'retention deleted segments');
    assert.ok(s.fs.freeBytes() > 0, 'and so freed space');
    assert.equal(await readLogStartCheckpoint(s.fs, DIR, () => {}), log.logStartOffset);
    const c = batchOf(1);
    assert.equal((await log.append(c.buf)).baseOffset, 16);
    await log.close();
    const again = await s.open();
    assert.equal(again.logStartOffset, log.logStartOffset);
    assert.deepEqual(
      (await readAll(again)).map((x) => x.value),
      [...kept, ...c.values].slice(log.logStartOffset),
    );
    await again.close();
  });

  test('a log start checkpoint that cannot be written leaves the old one and no temp file', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir(DIR);
    await writeLogStartCheckpoint(fs, DIR, 5);
    fs.capacityBytes = fs.usedBytes() + 3;
    await assert.rejects(writeLogStartCheckpoint(fs, DIR, 123456), /ENOSPC/);
    assert.equal(await readLogStartCheckpoint(fs, DIR, () => assert.fail('unreadable')), 5);
    assert.deepEqual(
      (await fs.readdir(DIR)).filter((n) => n.endsWith('.tmp')),
      [],
    );
  });
});

type Cmd =
  | { kind: 'append'; batches: number[] }
  | { kind: 'fill'; roomBytes: number }
  | { kind: 'free' }
  | { kind: 'truncatesFail'; on: boolean }
  | { kind: 'flush' }
  | { kind: 'reopen' };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      batches: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('fill' as const), roomBytes: fc.integer({ min: 0, max: 900 }) }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'free' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncatesFail' as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

test('property: random appends against a disk that fills up at random points keep exactly the acknowledged batches', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(300, 700, 1 << 20),
      fc.constantFrom(0, 100, 4096),
      fc.array(cmdArb, { minLength: 1, maxLength: 40 }),
      async (segmentBytes, indexIntervalBytes, cmds) => {
        const s = setup({ segmentBytes, indexIntervalBytes });
        let log = await s.open();
        const acked: string[] = [];
        try {
          for (const cmd of cmds) {
            switch (cmd.kind) {
              case 'append': {
                const parts = cmd.batches.map((n) => batchOf(n, 20));
                const endBefore = log.logEndOffset;
                try {
                  const r = await log.append(Buffer.concat(parts.map((p) => p.buf)));
                  assert.equal(r.baseOffset, acked.length);
                  acked.push(...parts.flatMap((p) => p.values));
                } catch (err) {
                  assert.ok(err instanceof StorageIoError, String(err));
                  assert.equal(log.logEndOffset, endBefore);
                }
                break;
              }
              case 'fill':
                s.fs.capacityBytes = s.fs.usedBytes() + cmd.roomBytes;
                break;
              case 'free':
                s.fs.capacityBytes = Number.POSITIVE_INFINITY;
                break;
              case 'truncatesFail':
                s.fs.failTruncates = cmd.on ? 'EIO' : null;
                break;
              case 'flush':
                try {
                  await log.flush();
                } catch (err) {
                  assert.ok(err instanceof StorageIoError);
                }
                break;
              case 'reopen': {
                // A reopen needs a working disk (recovery writes); give it one, as an operator would.
                s.fs.capacityBytes = Number.POSITIVE_INFINITY;
                s.fs.failTruncates = null;
                await log.close();
                log = await s.open();
                break;
              }
            }
            assert.equal(log.logEndOffset, acked.length);
            assert.ok(log.flushedOffset <= log.logEndOffset);
            assert.deepEqual(
              (await readAll(log)).map((x) => x.value),
              acked,
            );
          }
          // Free space, go on, reopen: exactly the acknowledged batches, in order, clean files.
          s.fs.capacityBytes = Number.POSITIVE_INFINITY;
          s.fs.failTruncates = null;
          const last = batchOf(2, 20);
          assert.equal((await log.append(last.buf)).baseOffset, acked.length);
          acked.push(...last.values);
          await log.close();
          log = await s.open();
          assert.equal(log.recoveredBytesTruncated, 0);
          assert.deepEqual(
            (await readAll(log)).map((x) => ({ offset: x.offset, value: x.value })),
            acked.map((value, offset) => ({ offset, value })),
          );
          assertFilesClean(s.fs, log);
        } finally {
          await log.close();
        }
      },
    ),
    { numRuns: 150 },
  );
});
