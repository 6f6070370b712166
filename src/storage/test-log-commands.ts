/**
 * Test helper: the fast-check commands the storage property tests drive a PartitionLog with.
 * Each test composes its own command mix (weights, and commands of its own) from these, so the
 * shapes of the shared commands and the way a fraction picks an offset are written once.
 */

import fc from 'fast-check';

/** A point in [0, 1] that `pick` turns into an offset of the log as it is when the command runs. */
export const fracArb: fc.Arbitrary<number> = fc.double({ min: 0, max: 1, noNaN: true });

/** The offset at fraction `frac` of [lo, hi] (both ends reachable). */
export function pick(frac: number, lo: number, hi: number): number {
  return Math.min(hi, lo + Math.floor(frac * (hi - lo + 1)));
}

export interface AppendCmd {
  kind: 'append';
  /** Records per batch, one batch per element, appended in one call. */
  batches: number[];
  valueBytes: number;
}

export function appendCmd(o: { maxRecords: number; maxValueBytes: number }): fc.Arbitrary<AppendCmd> {
  return fc.record({
    kind: fc.constant('append' as const),
    batches: fc.array(fc.integer({ min: 1, max: o.maxRecords }), { minLength: 1, maxLength: 3 }),
    valueBytes: fc.integer({ min: 1, max: o.maxValueBytes }),
  });
}

export interface ReadCmd {
  kind: 'read';
  frac: number;
  maxBytes: number;
  minOneBatch: boolean;
  /** Where the high watermark (maxOffset) is, as a fraction; null: no bound. */
  hwFrac: number | null;
}

export function readCmd(o: { minBytes: number; maxBytes: number }): fc.Arbitrary<ReadCmd> {
  return fc.record({
    kind: fc.constant('read' as const),
    frac: fracArb,
    maxBytes: fc.integer({ min: o.minBytes, max: o.maxBytes }),
    minOneBatch: fc.boolean(),
    hwFrac: fc.option(fracArb, { nil: null }),
  });
}

export interface TruncateCmd {
  kind: 'truncate';
  frac: number;
}
export const truncateCmd: fc.Arbitrary<TruncateCmd> = fc.record({
  kind: fc.constant('truncate' as const),
  frac: fracArb,
});

export interface DeleteRecordsCmd {
  kind: 'deleteRecords';
  frac: number;
}
export const deleteRecordsCmd: fc.Arbitrary<DeleteRecordsCmd> = fc.record({
  kind: fc.constant('deleteRecords' as const),
  frac: fracArb,
});

export interface RetentionSizeCmd {
  kind: 'retentionSize';
  retentionBytes: number;
}
export function retentionSizeCmd(maxBytes: number): fc.Arbitrary<RetentionSizeCmd> {
  return fc.record({
    kind: fc.constant('retentionSize' as const),
    retentionBytes: fc.integer({ min: 0, max: maxBytes }),
  });
}

export interface ReopenCmd {
  kind: 'reopen';
}
export const reopenCmd: fc.Arbitrary<ReopenCmd> = fc.constant({ kind: 'reopen' as const });
