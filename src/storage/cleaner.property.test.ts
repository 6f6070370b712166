/**
 * Model-based property test of compaction: random keyed appends (with tombstones), clock moves,
 * compactions (forced or by their own triggers, with a random min.compaction.lag.ms), reopens and
 * crashes against a PartitionLog on a MemoryFileSystem with small segments (so it rolls often).
 *
 * Goal: after any sequence, reading the whole log yields exactly the model's records, in offset
 * order, and logEndOffset matches. Method: the model is the list of written records still present.
 * When a pass reports it ran up to cleanableEndOffset E, the model drops every record below E that
 * has a later record of its key below E (its key's latest cleanable record survives; records at or
 * after E — the uncleaned tail — are untouched), gives every surviving tombstone below E a delete
 * horizon (now + delete.retention.ms) the first time a pass covers it, and drops tombstones below
 * E whose horizon has passed. A crash loses only records at or after the recovered end, which must
 * not be below what was flushed.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeRecordBatches } from '../protocol/records/record-batch.js';
import { type LogConfig, ManualClock, MemoryFileSystem, PartitionLog } from './index.js';
import { buildBatch } from './test-batches.js';

const DIR = '/prop/compact-0';
const KEYS = ['a', 'b', 'c', 'd', 'e', 'f'];

type Cmd =
  | { kind: 'append'; recs: Array<{ key: number; tombstone: boolean }> }
  | { kind: 'advance'; ms: number }
  | { kind: 'clean'; force: boolean }
  | { kind: 'lag'; ms: number }
  | { kind: 'reopen' }
  | { kind: 'crash' };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      recs: fc.array(
        fc.record({
          key: fc.integer({ min: 0, max: KEYS.length - 1 }),
          tombstone: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 1500 }) }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('clean' as const), force: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('lag' as const), ms: fc.constantFrom(0, 0, 500, 3000) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'crash' as const }) },
);

interface ModelRec {
  offset: number;
  key: string;
  value: string | null;
  /** Delete horizon once a pass has covered this tombstone. */
  horizonMs?: number;
}

async function readAll(
  log: PartitionLog,
): Promise<Array<{ offset: number; key: string; value: string | null }>> {
  const out: Array<{ offset: number; key: string; value: string | null }> = [];
  let next = log.logStartOffset;
  while (next < log.logEndOffset) {
    const r = await log.read(next, 700);
    assert.ok(r.nextOffset > next);
    for (const b of await decodeRecordBatches(r.records)) {
      for (const rec of b.records) {
        if (rec.offset >= next)
          out.push({ offset: rec.offset, key: rec.key!.toString(), value: rec.value?.toString() ?? null });
      }
    }
    next = r.nextOffset;
  }
  return out;
}

function applyClean(model: ModelRec[], end: number, nowMs: number, deleteRetentionMs: number): ModelRec[] {
  const latest = new Map<string, number>();
  for (const r of model) if (r.offset < end) latest.set(r.key, r.offset);
  const out: ModelRec[] = [];
  for (const r of model) {
    if (r.offset >= end) {
      out.push(r);
      continue;
    }
    if (latest.get(r.key)! > r.offset) continue;
    if (r.value === null) {
      if (r.horizonMs !== undefined && nowMs >= r.horizonMs) continue;
      r.horizonMs ??= nowMs + deleteRetentionMs;
    }
    out.push(r);
  }
  return out;
}

test('compaction matches the latest-record-per-key model under appends, cleans, reopens and crashes', async () => {
  const coverage = { recordsRemoved: 0, tombstonesRemoved: 0, merges: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.array(cmdArb, { minLength: 10, maxLength: 80, size: 'max' }),
      fc.integer({ min: 0, max: 2000 }),
      async (cmds, deleteRetentionMs) => {
        const fs = new MemoryFileSystem();
        const clock = new ManualClock(1_000_000);
        const deps = { fs, clock, logger: { warn: () => {} } };
        const cfg: Partial<LogConfig> = {
          compact: true,
          cleanupDelete: false,
          segmentBytes: 220,
          indexIntervalBytes: 0,
          deleteRetentionMs,
          minCleanableDirtyRatio: 0.5,
        };
        let log = await PartitionLog.open(DIR, cfg, deps);
        let model: ModelRec[] = [];
        let serial = 0;
        let leo = 0;
        try {
          for (const cmd of cmds) {
            switch (cmd.kind) {
              case 'append': {
                const recs = cmd.recs.map((r) => ({
                  key: KEYS[r.key]!,
                  value: r.tombstone ? null : `v${serial++}`,
                  timestampMs: clock.nowMs(),
                }));
                const base = (await log.append(buildBatch(recs, { baseTimestampMs: clock.nowMs() })))
                  .baseOffset;
                recs.forEach((r, i) => model.push({ offset: base + i, key: r.key, value: r.value }));
                leo = base + recs.length;
                break;
              }
              case 'advance':
                clock.advance(cmd.ms);
                break;
              case 'lag':
                cfg.minCompactionLagMs = cmd.ms;
                log.updateConfig({ minCompactionLagMs: cmd.ms });
                break;
              case 'clean': {
                const r = await log.clean(clock.nowMs(), { force: cmd.force });
                coverage.recordsRemoved += r.recordsRemoved;
                coverage.tombstonesRemoved += r.tombstonesRemoved;
                if (r.segmentsAfter < r.segmentsBefore) coverage.merges++;
                if (r.cleaned)
                  model = applyClean(model, r.cleanableEndOffset, clock.nowMs(), deleteRetentionMs);
                break;
              }
              case 'reopen':
                await log.close();
                log = await PartitionLog.open(DIR, cfg, deps);
                break;
              case 'crash': {
                const flushed = log.flushedOffset;
                fs.crash();
                log = await PartitionLog.open(DIR, cfg, deps);
                assert.ok(log.logEndOffset >= flushed, 'flushed records survive a crash');
                model = model.filter((r) => r.offset < log.logEndOffset);
                leo = log.logEndOffset;
                break;
              }
            }
            assert.equal(log.logEndOffset, leo, 'logEndOffset never moves except by appends');
            const view = await readAll(log);
            assert.deepEqual(
              view,
              model.map(({ offset, key, value }) => ({ offset, key, value })),
              `after ${JSON.stringify(cmd)}`,
            );
          }
        } finally {
          await log.close().catch(() => {});
        }
      },
    ),
    { numRuns: 150 },
  );
  // The runs did exercise compaction, tombstone expiry and merging, not just no-op passes.
  assert.ok(
    coverage.recordsRemoved > 0 && coverage.tombstonesRemoved > 0 && coverage.merges > 0,
    JSON.stringify(coverage),
  );
});
