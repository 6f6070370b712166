/**
 * The tail cache never changes what a read returns.
 *
 * Method: two PartitionLogs on two MemoryFileSystems run the same random commands: appends,
 * reads (mostly near the end, where the cache answers; with maxOffset and minOneBatch), follower
 * truncations, DeleteRecords, size retention, reopening, and appends to a third log that shares
 * the cached log's memory budget (so the budget drops its cache at times). One log keeps a tail
 * cache with a small random budget (entries are charged for the buffer they view, 8 KiB for these
 * small ones from Node's pool, so a few entries fit), the other none (`tailCache: null`). Every read must return
 * the same bytes and next offset from both. The cached log's file reads are counted to check that
 * the cache does answer some reads (without it the test would pass vacuously).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type LogConfig,
  type LogFile,
  type LogFileSystem,
  ManualClock,
  MemoryFileSystem,
  PartitionLog,
} from './index.js';
import { ReadBufferPool } from './read-buffer-pool.js';
import { TailCacheBudget } from './tail-cache.js';
import { valuesBatch } from './test-batches.js';
import {
  type AppendCmd,
  type DeleteRecordsCmd,
  type ReopenCmd,
  type RetentionSizeCmd,
  appendCmd,
  deleteRecordsCmd,
  fracArb,
  pick,
  reopenCmd,
  retentionSizeCmd,
} from './test-log-commands.js';

const DIR = '/tail/topic-0';
const OTHER = '/tail/other-0';

type Cmd =
  | AppendCmd
  | {
      kind: 'read';
      back: number;
      frac: number;
      maxBytes: number;
      minOneBatch: boolean;
      hwBack: number | null;
    }
  | { kind: 'truncate'; back: number }
  | DeleteRecordsCmd
  | RetentionSizeCmd
  | ReopenCmd
  | { kind: 'appendOther'; valueBytes: number };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: appendCmd({ maxRecords: 5, maxValueBytes: 300 }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      // Offsets counted back from the end (the cache's side), or anywhere (frac) when back < 0.
      back: fc.integer({ min: -1, max: 12 }),
      frac: fracArb,
      maxBytes: fc.integer({ min: 0, max: 4000 }),
      minOneBatch: fc.boolean(),
      hwBack: fc.option(fc.integer({ min: 0, max: 6 }), { nil: null }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('truncate' as const), back: fc.integer({ min: 0, max: 8 }) }),
  },
  { weight: 1, arbitrary: deleteRecordsCmd },
  { weight: 1, arbitrary: retentionSizeCmd(6000) },
  { weight: 1, arbitrary: reopenCmd },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('appendOther' as const),
      valueBytes: fc.integer({ min: 1, max: 600 }),
    }),
  },
);

/** A MemoryFileSystem that counts reads of log data. */
class CountingFs implements LogFileSystem {
  readonly mem = new MemoryFileSystem();
  reads = 0;
  async open(p: string): Promise<LogFile> {
    const f = await this.mem.open(p);
    return {
      path: f.path,
      size: () => f.size(),
      append: (d) => f.append(d),
      read: (pos, len) => {
        this.reads++;
        return f.read(pos, len);
      },
      readInto: (t, pos, len) => {
        this.reads++;
        return f.readInto!(t, pos, len);
      },
      datasync: () => f.datasync(),
      truncate: (n) => f.truncate(n),
      close: () => f.close(),
    };
  }
  readdir = (d: string) => this.mem.readdir(d);
  mkdir = (d: string) => this.mem.mkdir(d);
  rename = (a: string, b: string) => this.mem.rename(a, b);
  unlink = (p: string) => this.mem.unlink(p);
  stat = (p: string) => this.mem.stat(p);
  rmrf = (d: string) => this.mem.rmrf(d);
  fsyncDir = (d: string) => this.mem.fsyncDir(d);
}

test('reads from a log with a tail cache equal reads from the same log without one', async () => {
  let counter = 0;
  let cacheAnswered = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(2500, 6000, 1 << 20),
      fc.constantFrom(0, 100, 4096),
      fc.integer({ min: 0, max: 40_000 }),
      fc.integer({ min: 0, max: 60_000 }),
      fc.boolean(),
      fc.array(cmdArb, { minLength: 1, maxLength: 50 }),
      async (segmentBytes, indexIntervalBytes, perLogBytes, limitBytes, pooled, cmds) => {
        const cfg: Partial<LogConfig> = {
          segmentBytes,
          indexIntervalBytes,
          retentionMs: -1,
          retentionBytes: -1,
        };
        const budget = new TailCacheBudget(limitBytes, perLogBytes);
        const cachedFs = new CountingFs();
        const plainFs = new MemoryFileSystem();
        const pool = pooled ? new ReadBufferPool(1, 1 << 16) : null;
        const clock = new ManualClock(1_000_000);
        const openCached = () =>
          PartitionLog.open(DIR, cfg, {
            fs: cachedFs,
            clock,
            logger: { warn: () => {} },
            readPool: pool,
            tailCache: budget,
          });
        const openPlain = () =>
          PartitionLog.open(DIR, cfg, { fs: plainFs, clock, logger: { warn: () => {} }, tailCache: null });
        let cached = await openCached();
        let plain = await openPlain();
        const other = await PartitionLog.open(
          OTHER,
          {},
          {
            fs: new MemoryFileSystem(),
            clock,
            logger: { warn: () => {} },
            tailCache: budget,
          },
        );
        try {
          for (const cmd of cmds) {
            assert.equal(cached.logEndOffset, plain.logEndOffset);
            assert.equal(cached.logStartOffset, plain.logStartOffset);
            const lo = plain.logStartOffset;
            const hi = plain.logEndOffset;
            switch (cmd.kind) {
              case 'append': {
                const bytes = Buffer.concat(
                  cmd.batches.map((n) =>
                    valuesBatch(
                      Array.from({ length: n }, () => `${counter++}`.padEnd(cmd.valueBytes, 'x')),
                      clock.nowMs(),
                    ),
                  ),
                );
                // Each log gets its own copy: append patches offsets in place.
                const a = await cached.append(Buffer.from(bytes));
                const b = await plain.append(Buffer.from(bytes));
                assert.equal(a.baseOffset, b.baseOffset);
                break;
              }
              case 'read': {
                const offset = cmd.back < 0 ? pick(cmd.frac, lo, hi) : Math.max(lo, hi - cmd.back);
                const maxOffset = cmd.hwBack === null ? undefined : Math.max(lo, hi - cmd.hwBack);
                const opts = { minOneBatch: cmd.minOneBatch, maxOffset };
                const readsBefore = cachedFs.reads;
                const got = await cached.read(offset, cmd.maxBytes, opts);
                const want = await plain.read(offset, cmd.maxBytes, opts);
                assert.equal(
                  got.nextOffset,
                  want.nextOffset,
                  `nextOffset of read(${offset}, ${cmd.maxBytes})`,
                );
                assert.ok(got.records.equals(want.records), `bytes of read(${offset}, ${cmd.maxBytes})`);
                if (got.records.length > 0 && cachedFs.reads === readsBefore) cacheAnswered++;
                pool?.release(got.records);
                break;
              }
              case 'truncate': {
                const to = Math.max(lo, hi - cmd.back);
                await cached.truncateTo(to);
                await plain.truncateTo(to);
                break;
              }
              case 'deleteRecords': {
                const to = pick(cmd.frac, lo, hi);
                await cached.deleteRecordsBefore(to);
                await plain.deleteRecordsBefore(to);
                break;
              }
              case 'retentionSize': {
                for (const log of [cached, plain]) {
                  log.updateConfig({ retentionBytes: cmd.retentionBytes });
                  await log.applyRetention();
                  log.updateConfig({ retentionBytes: -1 });
                }
                break;
              }
              case 'reopen': {
                await cached.close();
                await plain.close();
                cached = await openCached();
                plain = await openPlain();
                break;
              }
              case 'appendOther':
                await other.append(valuesBatch([`o${counter++}`.padEnd(cmd.valueBytes, 'o')], clock.nowMs()));
                break;
            }
          }
        } finally {
          await cached.close();
          await plain.close();
          await other.close();
        }
        assert.equal(budget.heldBytes, 0, 'closed logs hold no cache memory');
      },
    ),
    { numRuns: 200 },
  );
  assert.ok(cacheAnswered > 0, 'the tail cache answered some reads');
});
