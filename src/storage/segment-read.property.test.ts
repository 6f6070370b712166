/**
 * PartitionLog.read returns exactly the batches Kafka's rules select, whatever the read buffer
 * sizes: the first batch containing the offset, then whole batches while they fit maxBytes (one
 * batch anyway with minOneBatch when nothing was taken), never one at or past maxOffset.
 *
 * Method: random appends (batches of 1-6 records of 1-400 bytes, 3-6 KB segments so reads span
 * several), DeleteRecords and follower truncations against a PartitionLog on a MemoryFileSystem,
 * with the read path's slack and largest read shrunk to a few bytes (readTuning) so that every
 * re-read branch of readSegmentRange runs: the index lagging past the slack, a header past the
 * buffer, a last batch larger than the buffer, budgets beyond one read. Every read is compared
 * byte for byte with the same selection made over a plain list of the batches appended; pooled
 * results are released at once, so a buffer reused while still viewed would show up as wrong bytes.
 */

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { type LogConfig, ManualClock, MemoryFileSystem, PartitionLog } from './index.js';
import { ReadBufferPool } from './read-buffer-pool.js';
import { MAX_CHUNK_BYTES, READ_SLACK_BYTES, readTuning } from './segment-read.js';
import { valuesBatch } from './test-batches.js';
import {
  type AppendCmd,
  type DeleteRecordsCmd,
  type ReadCmd,
  type TruncateCmd,
  appendCmd,
  deleteRecordsCmd,
  pick,
  readCmd,
  truncateCmd,
} from './test-log-commands.js';

const DIR = '/read/topic-0';

type Cmd = AppendCmd | ReadCmd | DeleteRecordsCmd | TruncateCmd;

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: appendCmd({ maxRecords: 6, maxValueBytes: 400 }) },
  { weight: 6, arbitrary: readCmd({ minBytes: 0, maxBytes: 9000 }) },
  { weight: 1, arbitrary: deleteRecordsCmd },
  { weight: 1, arbitrary: truncateCmd },
);

interface RefBatch {
  base: number;
  last: number;
  bytes: Buffer;
}

/** The reference selection over the batch list (what PartitionLog.read documents). */
function expectedRead(
  batches: readonly RefBatch[],
  logEnd: number,
  offset: number,
  maxBytes: number,
  minOneBatch: boolean,
  maxOffsetOpt: number | undefined,
): { records: Buffer; nextOffset: number } {
  const maxOffset = Math.min(maxOffsetOpt ?? Number.POSITIVE_INFINITY, logEnd);
  if (offset === logEnd || offset >= maxOffset) return { records: Buffer.alloc(0), nextOffset: offset };
  const taken: Buffer[] = [];
  let bytes = 0;
  let next = offset;
  for (const b of batches) {
    if (b.last < offset) continue;
    if (b.base >= maxOffset) break;
    if (bytes + b.bytes.length > maxBytes && !(minOneBatch && bytes === 0)) break;
    taken.push(b.bytes);
    bytes += b.bytes.length;
    next = b.last + 1;
    if (bytes >= maxBytes) break;
  }
  return { records: Buffer.concat(taken), nextOffset: next };
}

after(() => {
  readTuning.slackBytes = READ_SLACK_BYTES;
  readTuning.maxChunkBytes = MAX_CHUNK_BYTES;
});

test('PartitionLog.read selects the same batches as a plain list, whatever the read sizes', async () => {
  let counter = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(3000, 6000, 1 << 20),
      fc.constantFrom(0, 100, 4096),
      fc.integer({ min: 0, max: 600 }),
      fc.integer({ min: 0, max: 5000 }),
      fc.boolean(),
      fc.array(cmdArb, { minLength: 1, maxLength: 40 }),
      async (segmentBytes, indexIntervalBytes, slackBytes, maxChunkBytes, pooled, cmds) => {
        readTuning.slackBytes = slackBytes;
        readTuning.maxChunkBytes = maxChunkBytes;
        const fs = new MemoryFileSystem();
        const cfg: Partial<LogConfig> = {
          segmentBytes,
          indexIntervalBytes,
          retentionMs: -1,
          retentionBytes: -1,
        };
        const pool = pooled ? new ReadBufferPool(1, 1 << 16) : null;
        const log = await PartitionLog.open(DIR, cfg, {
          fs,
          clock: new ManualClock(1_000_000),
          logger: { warn: () => {} },
          readPool: pool,
        });
        let batches: RefBatch[] = [];
        try {
          for (const cmd of cmds) {
            switch (cmd.kind) {
              case 'append': {
                const bufs = cmd.batches.map((n) =>
                  valuesBatch(
                    Array.from({ length: n }, () => `${counter++}`.padEnd(cmd.valueBytes, 'x')),
                    1_000_000,
                  ),
                );
                const all = Buffer.concat(bufs);
                const res = await log.append(all);
                let at = 0;
                let base = res.baseOffset;
                for (let i = 0; i < bufs.length; i++) {
                  const n = cmd.batches[i]!;
                  const len = bufs[i]!.length;
                  batches.push({ base, last: base + n - 1, bytes: Buffer.from(all.subarray(at, at + len)) });
                  at += len;
                  base += n;
                }
                break;
              }
              case 'read': {
                const lo = log.logStartOffset;
                const hi = log.logEndOffset;
                const offset = pick(cmd.frac, lo, hi);
                const maxOffset = cmd.hwFrac === null ? undefined : pick(cmd.hwFrac, lo, hi);
                const got = await log.read(offset, cmd.maxBytes, { minOneBatch: cmd.minOneBatch, maxOffset });
                const want = expectedRead(batches, hi, offset, cmd.maxBytes, cmd.minOneBatch, maxOffset);
                assert.equal(got.nextOffset, want.nextOffset, 'nextOffset');
                assert.ok(got.records.equals(want.records), `bytes of read(${offset}, ${cmd.maxBytes})`);
                pool?.release(got.records);
                break;
              }
              case 'deleteRecords': {
                const to = pick(cmd.frac, log.logStartOffset, log.logEndOffset);
                await log.deleteRecordsBefore(to);
                break;
              }
              case 'truncate': {
                const to = pick(cmd.frac, log.logStartOffset, log.logEndOffset);
                await log.truncateTo(to);
                const end = log.logEndOffset;
                if (batches.length > 0 && end <= batches[0]!.base) batches = [];
                else batches = batches.filter((b) => b.last < end);
                break;
              }
            }
          }
        } finally {
          await log.close();
        }
      },
    ),
    { numRuns: 300 },
  );
});
