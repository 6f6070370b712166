/**
 * Pooled read buffers must never change what a read returns, nor bytes already handed out.
 *
 * Method: two PartitionLogs on two MemoryFileSystems run the same random command sequence
 * (appends, reads, truncation as a follower does it, retention, DeleteRecords, reopen, small
 * segments so reads span several). One reads into a ReadBufferPool that pools every read
 * (minBytes 1) and small free-list bound; the other allocates a fresh buffer per read. Every read
 * must return identical bytes from both. Pooled results are then either released at once (as the
 * network layer does after a socket write), released later, or never released (a dropped
 * response); every result not yet released is re-checked against a copy taken when it was read,
 * after every later command, so reuse of a buffer still in use would be caught.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type LogConfig, ManualClock, MemoryFileSystem, PartitionLog } from './index.js';
import { ReadBufferPool } from './read-buffer-pool.js';
import { valuesBatch } from './test-batches.js';
import {
  type AppendCmd,
  type DeleteRecordsCmd,
  type ReadCmd,
  type ReopenCmd,
  type RetentionSizeCmd,
  type TruncateCmd,
  appendCmd,
  deleteRecordsCmd,
  pick,
  readCmd,
  reopenCmd,
  retentionSizeCmd,
  truncateCmd,
} from './test-log-commands.js';

const DIR = '/pool/topic-0';

type Cmd =
  | AppendCmd
  | (ReadCmd & { fate: Fate })
  | { kind: 'releaseHeld'; count: number }
  | TruncateCmd
  | DeleteRecordsCmd
  | RetentionSizeCmd
  | ReopenCmd;

/** What happens to a pooled read result: released now, held until a releaseHeld, or dropped. */
type Fate = 'release' | 'hold' | 'drop';

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: appendCmd({ maxRecords: 5, maxValueBytes: 300 }) },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        readCmd({ minBytes: 1, maxBytes: 8000 }),
        fc.constantFrom<Fate>('release', 'release', 'hold', 'drop'),
      )
      .map(([read, fate]) => ({ ...read, fate })),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('releaseHeld' as const),
      count: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: truncateCmd },
  { weight: 1, arbitrary: deleteRecordsCmd },
  { weight: 1, arbitrary: retentionSizeCmd(20_000) },
  { weight: 1, arbitrary: reopenCmd },
);

test('reads through a buffer pool return the same bytes as fresh buffers, and released buffers never alias live ones', async () => {
  let counter = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(2_000, 6_000, 1 << 20),
      fc.constantFrom(0, 512, 4096),
      fc.array(cmdArb, { minLength: 1, maxLength: 50 }),
      async (segmentBytes, indexIntervalBytes, cmds) => {
        const pool = new ReadBufferPool(1, 4 * 64 * 1024);
        const fsPooled = new MemoryFileSystem();
        const fsPlain = new MemoryFileSystem();
        const clock = new ManualClock(1_000_000);
        const cfg: Partial<LogConfig> = {
          segmentBytes,
          indexIntervalBytes,
          retentionMs: -1,
          retentionBytes: -1,
        };
        const logger = { warn: () => {} };
        const open = () =>
          Promise.all([
            PartitionLog.open(DIR, cfg, { fs: fsPooled, clock, logger, readPool: pool }),
            PartitionLog.open(DIR, cfg, { fs: fsPlain, clock, logger, readPool: null }),
          ]);
        let [pooled, plain] = await open();
        /** Pooled results not released yet, with the bytes they had when read. */
        const held: Array<{ records: Buffer; copy: Buffer }> = [];
        const dropped: Array<{ records: Buffer; copy: Buffer }> = [];
        try {
          for (const cmd of cmds) {
            switch (cmd.kind) {
              case 'append': {
                const values = (n: number) =>
                  Array.from({ length: n }, () => `${counter++}`.padEnd(cmd.valueBytes, 'x'));
                const batches = cmd.batches.map((n) => valuesBatch(values(n), clock.nowMs()));
                const a = await pooled.append(Buffer.concat(batches));
                const b = await plain.append(Buffer.concat(batches));
                assert.deepEqual(a, b);
                break;
              }
              case 'read': {
                const lo = plain.logStartOffset;
                const hi = plain.logEndOffset;
                const offset = pick(cmd.frac, lo, hi);
                const maxOffset = cmd.hwFrac === null ? undefined : pick(cmd.hwFrac, lo, hi);
                const opts = { minOneBatch: cmd.minOneBatch, maxOffset };
                const a = await pooled.read(offset, cmd.maxBytes, opts);
                const b = await plain.read(offset, cmd.maxBytes, opts);
                assert.equal(a.nextOffset, b.nextOffset);
                assert.ok(a.records.equals(b.records), 'pooled read returns the same bytes');
                if (!pool.isLeased(a.records)) break;
                if (cmd.fate === 'release') assert.ok(pool.release(a.records));
                else if (cmd.fate === 'hold') held.push({ records: a.records, copy: Buffer.from(a.records) });
                else dropped.push({ records: a.records, copy: Buffer.from(a.records) });
                break;
              }
              case 'releaseHeld':
                for (const h of held.splice(0, cmd.count)) {
                  assert.ok(pool.release(h.records));
                  assert.equal(pool.release(h.records), false, 'a second release is a no-op');
                }
                break;
              case 'truncate': {
                const target = pick(cmd.frac, plain.logStartOffset, plain.logEndOffset);
                await pooled.truncateTo(target);
                await plain.truncateTo(target);
                break;
              }
              case 'deleteRecords': {
                const target = pick(cmd.frac, plain.logStartOffset, plain.logEndOffset);
                await pooled.deleteRecordsBefore(target);
                await plain.deleteRecordsBefore(target);
                break;
              }
              case 'retentionSize':
                for (const log of [pooled, plain]) {
                  log.updateConfig({ retentionBytes: cmd.retentionBytes });
                  await log.applyRetention();
                  log.updateConfig({ retentionBytes: -1 });
                }
                break;
              case 'reopen':
                await pooled.close();
                await plain.close();
                [pooled, plain] = await open();
                break;
            }
            assert.equal(pooled.logStartOffset, plain.logStartOffset);
            assert.equal(pooled.logEndOffset, plain.logEndOffset);
            for (const h of [...held, ...dropped]) {
              assert.ok(h.records.equals(h.copy), 'bytes handed out are never overwritten while unreleased');
            }
          }
          // A whole-log read agrees too, after all that reuse.
          let next = plain.logStartOffset;
          while (next < plain.logEndOffset) {
            const a = await pooled.read(next, 5000);
            const b = await plain.read(next, 5000);
            assert.ok(a.records.equals(b.records));
            assert.equal(a.nextOffset, b.nextOffset);
            pool.release(a.records);
            next = b.nextOffset;
          }
        } finally {
          await pooled.close();
          await plain.close();
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('ReadBufferPool: reuse by capacity class, bounded free bytes, release only of leased buffers', () => {
  const step = 64 * 1024;
  const pool = new ReadBufferPool(1, 2 * step);
  const a = pool.acquire(100);
  assert.equal(a.length, step);
  assert.ok(pool.isLeased(a.subarray(10, 20)));
  assert.equal(pool.release(Buffer.alloc(10)), false, 'not from the pool');
  assert.ok(pool.release(a.subarray(10, 20)), 'a view of a leased buffer releases it');
  assert.equal(pool.isLeased(a), false);
  assert.equal(pool.release(a), false, 'already released');
  const b = pool.acquire(step);
  assert.equal(b, a, 'same capacity class is reused');
  const c = pool.acquire(step + 1);
  assert.equal(c.length, 2 * step);
  const d = pool.acquire(step);
  assert.notEqual(d, b);
  pool.release(b);
  pool.release(c);
  assert.equal(pool.freeBytesHeld, step, 'c would exceed freeBytesMax: dropped');
  pool.release(d);
  assert.equal(pool.freeBytesHeld, 2 * step);
  assert.deepEqual(pool.stats, { acquired: 4, reused: 1, released: 4, dropped: 1 });
});
