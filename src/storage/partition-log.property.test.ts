/**
 * Model-based property test: random command sequences against PartitionLog on a MemoryFileSystem,
 * checked after every step against a plain array of records (offset, value, timestamp, batch).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { batchSizeAt } from '../protocol/records/batch-header.js';
import { type LogConfig, ManualClock, MemoryFileSystem, PartitionLog } from './index.js';
import { decodeValues, valuesBatch } from './test-batches.js';
import {
  type DeleteRecordsCmd,
  type ReadCmd,
  type ReopenCmd,
  type RetentionSizeCmd,
  type TruncateCmd,
  deleteRecordsCmd,
  pick,
  readCmd,
  reopenCmd,
  retentionSizeCmd,
  truncateCmd,
} from './test-log-commands.js';

const DIR = '/prop/topic-0';

type Cmd =
  | { kind: 'append'; batches: number[] }
  | { kind: 'flush' }
  | ReopenCmd
  | { kind: 'crash' }
  | { kind: 'advance'; ms: number }
  | { kind: 'retentionTime'; retentionMs: number }
  | RetentionSizeCmd
  | DeleteRecordsCmd
  | TruncateCmd
  | ReadCmd
  | { kind: 'offsetForTimestamp'; back: number };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      batches: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 1, arbitrary: reopenCmd },
  { weight: 1, arbitrary: fc.constant({ kind: 'crash' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 5000 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('retentionTime' as const),
      retentionMs: fc.integer({ min: 0, max: 8000 }),
    }),
  },
  { weight: 1, arbitrary: retentionSizeCmd(2000) },
  { weight: 1, arbitrary: deleteRecordsCmd },
  { weight: 1, arbitrary: truncateCmd },
  { weight: 3, arbitrary: readCmd({ minBytes: 1, maxBytes: 1500 }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('offsetForTimestamp' as const),
      back: fc.integer({ min: -100, max: 10000 }),
    }),
  },
);

interface ModelRecord {
  offset: number;
  value: string;
  timestampMs: number;
  batchBase: number;
  batchLast: number;
}

class Model {
  records: ModelRecord[] = []; // offsets [logStartOffset, logEndOffset), contiguous
  logStartOffset = 0;
  logEndOffset = 0;
  dropBelow(offset: number): void {
    this.records = this.records.filter((r) => r.offset >= offset);
  }
  dropFrom(offset: number): void {
    this.records = this.records.filter((r) => r.offset < offset);
  }
  at(offset: number): ModelRecord | undefined {
    return this.records[offset - this.logStartOffset];
  }
}

async function checkWholeLog(log: PartitionLog, model: Model): Promise<void> {
  assert.equal(log.logStartOffset, model.logStartOffset, 'logStartOffset');
  assert.equal(log.logEndOffset, model.logEndOffset, 'logEndOffset');
  assert.ok(log.flushedOffset <= log.logEndOffset);
  const got: Array<{ offset: number; value: string | null }> = [];
  let next = model.logStartOffset;
  while (next < model.logEndOffset) {
    const r = await log.read(next, 700);
    assert.ok(r.nextOffset > next);
    got.push(...decodeValues(r.records).filter((x) => x.offset >= next));
    next = r.nextOffset;
  }
  assert.deepEqual(
    got,
    model.records.map((r) => ({ offset: r.offset, value: r.value })),
  );
}

test('PartitionLog matches an array model under random commands', async () => {
  let counter = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(200, 350, 600, 1 << 20),
      fc.constantFrom(0, 60, 4096),
      fc.array(cmdArb, { minLength: 1, maxLength: 40 }),
      async (segmentBytes, indexIntervalBytes, cmds) => {
        const fs = new MemoryFileSystem();
        const clock = new ManualClock(1_000_000);
        const deps = { fs, clock, logger: { warn: () => {} } };
        const cfg: Partial<LogConfig> = {
          segmentBytes,
          indexIntervalBytes,
          retentionMs: -1,
          retentionBytes: -1,
        };
        let log = await PartitionLog.open(DIR, cfg, deps);
        const model = new Model();
        try {
          for (const cmd of cmds) {
            switch (cmd.kind) {
              case 'append': {
                const nowMs = clock.nowMs();
                const bufs = cmd.batches.map((n) =>
                  valuesBatch(
                    Array.from({ length: n }, () => `v${counter++}`),
                    nowMs,
                  ),
                );
                const firstValue = counter - cmd.batches.reduce((a, b) => a + b, 0);
                const res = await log.append(Buffer.concat(bufs));
                assert.equal(res.baseOffset, model.logEndOffset);
                let off = model.logEndOffset;
                let v = firstValue;
                for (const n of cmd.batches) {
                  for (let k = 0; k < n; k++) {
                    model.records.push({
                      offset: off + k,
                      value: `v${v++}`,
                      timestampMs: nowMs,
                      batchBase: off,
                      batchLast: off + n - 1,
                    });
                  }
                  off += n;
                }
                model.logEndOffset = off;
                assert.equal(res.lastOffset, off - 1);
                break;
              }
              case 'flush':
                await log.flush();
                assert.equal(log.flushedOffset, model.logEndOffset);
                break;
              case 'reopen':
                await log.close();
                log = await PartitionLog.open(DIR, cfg, deps);
                assert.equal(log.recoveredBytesTruncated, 0);
                break;
              case 'crash': {
                const flushed = log.flushedOffset;
                fs.crash();
                log = await PartitionLog.open(DIR, cfg, deps);
                // Exactly the durable prefix survives; if DeleteRecords had moved the start past
                // it, the log restarts empty at the (durable) checkpoint.
                const expectedEnd = Math.max(flushed, model.logStartOffset);
                model.dropFrom(expectedEnd);
                model.logEndOffset = expectedEnd;
                break;
              }
              case 'advance':
                clock.advance(cmd.ms);
                break;
              case 'retentionTime': {
                log.updateConfig({ retentionMs: cmd.retentionMs, retentionBytes: -1 });
                const before = model.logStartOffset;
                const deleted = await log.applyRetention();
                const after = log.logStartOffset;
                assert.ok(after >= before && after <= model.logEndOffset);
                if (deleted === 0) assert.equal(after, before);
                else assert.equal(after, log.segmentBaseOffsets[0]);
                for (const r of model.records) {
                  if (r.offset < after)
                    assert.ok(clock.nowMs() - r.timestampMs > cmd.retentionMs, 'only expired records go');
                }
                model.logStartOffset = after;
                model.dropBelow(after);
                log.updateConfig({ retentionMs: -1 });
                break;
              }
              case 'retentionSize': {
                log.updateConfig({ retentionMs: -1, retentionBytes: cmd.retentionBytes });
                const before = model.logStartOffset;
                const sizeBefore = log.sizeBytes;
                const deleted = await log.applyRetention();
                const after = log.logStartOffset;
                assert.ok(after >= before && after <= model.logEndOffset);
                if (deleted > 0) {
                  assert.ok(log.sizeBytes >= cmd.retentionBytes);
                  assert.ok(log.sizeBytes < sizeBefore);
                  assert.equal(after, log.segmentBaseOffsets[0]);
                }
                model.logStartOffset = after;
                model.dropBelow(after);
                log.updateConfig({ retentionBytes: -1 });
                break;
              }
              case 'deleteRecords': {
                const target = pick(cmd.frac, model.logStartOffset, model.logEndOffset);
                await log.deleteRecordsBefore(target);
                model.logStartOffset = Math.max(model.logStartOffset, target);
                model.dropBelow(model.logStartOffset);
                const bases = log.segmentBaseOffsets;
                // No segment wholly below the start survives, except the active one.
                if (bases.length > 1) assert.ok(bases[1]! > model.logStartOffset);
                break;
              }
              case 'truncate': {
                const target = pick(cmd.frac, model.logStartOffset, model.logEndOffset);
                const firstBase = log.segmentBaseOffsets[0]!;
                await log.truncateTo(target);
                if (target >= model.logEndOffset) break;
                if (target <= firstBase) {
                  model.records = [];
                  model.logStartOffset = target;
                  model.logEndOffset = target;
                } else {
                  // Cut at the start of the batch holding target (which may lie below the start).
                  const holder = model.at(target);
                  const cut = holder ? holder.batchBase : target;
                  model.dropFrom(cut);
                  model.logEndOffset = cut;
                  if (model.logStartOffset > cut) model.logStartOffset = cut;
                }
                break;
              }
              case 'read': {
                const offset = pick(cmd.frac, model.logStartOffset, model.logEndOffset);
                const maxOffset =
                  cmd.hwFrac === null
                    ? undefined
                    : pick(cmd.hwFrac, model.logStartOffset, model.logEndOffset);
                const r = await log.read(offset, cmd.maxBytes, { minOneBatch: cmd.minOneBatch, maxOffset });
                const recs = decodeValues(r.records);
                const limit = Math.min(model.logEndOffset, maxOffset ?? Number.POSITIVE_INFINITY);
                if (offset >= limit) {
                  assert.equal(r.records.length, 0);
                  assert.equal(r.nextOffset, offset);
                  break;
                }
                const fromOffset = recs.filter((x) => x.offset >= offset);
                assert.deepEqual(
                  fromOffset,
                  model.records
                    .filter((m) => m.offset >= offset && m.offset < r.nextOffset)
                    .map((m) => ({ offset: m.offset, value: m.value })),
                );
                if (recs.length > 0) {
                  assert.equal(
                    recs[0]!.offset,
                    model.at(offset)!.batchBase,
                    'starts with the batch holding offset',
                  );
                  assert.equal(r.nextOffset, recs.at(-1)!.offset + 1);
                  // Whole batches only, and none at or past maxOffset.
                  assert.ok(model.at(recs.at(-1)!.offset)!.batchLast === recs.at(-1)!.offset);
                  if (maxOffset !== undefined)
                    assert.ok(model.at(recs.at(-1)!.offset)!.batchBase < maxOffset);
                  if (r.records.length > cmd.maxBytes) {
                    assert.ok(cmd.minOneBatch);
                    assert.equal(
                      batchSizeAt(r.records, 0),
                      r.records.length,
                      'oversized only as a single batch',
                    );
                  }
                } else {
                  assert.equal(r.nextOffset, offset);
                  assert.ok(!cmd.minOneBatch, 'minOneBatch always returns something below the limit');
                }
                break;
              }
              case 'offsetForTimestamp': {
                const ts = clock.nowMs() - cmd.back;
                const got = await log.offsetForTimestamp(ts);
                // Timestamps never decrease, so the first record at/after ts is the answer's batch.
                const first = model.records.find((m) => m.timestampMs >= ts);
                if (!first) assert.equal(got, null);
                else
                  assert.deepEqual(got, {
                    offset: Math.max(first.batchBase, model.logStartOffset),
                    timestamp: first.timestampMs,
                  });
                break;
              }
            }
            await checkWholeLog(log, model);
          }
        } finally {
          await log.close();
        }
      },
    ),
    { numRuns: 100 },
  );
});
