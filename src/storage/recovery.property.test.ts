/**
 * Crash recovery under damage (issue 7, single node): 1,000 seeded cases. Each case builds a log
 * of random batches and segment rolls on a MemoryFileSystem, optionally crashes it (unsynced bytes
 * vanish), then damages it: the active segment's tail (truncate at a random byte, flip random
 * bits, append garbage or a replayed batch, zero a range, lose the file) and the index files of
 * sealed segments (delete, truncate, flip bits, append garbage, zero a range) or stale index files
 * next to the active segment. It then reopens the log and checks:
 *
 * - open never throws;
 * - the log keeps exactly the batches before the first damaged one (a batch whose only changed
 *   bytes are its partitionLeaderEpoch, which is outside the CRC and not used by recovery, counts
 *   as intact) and drops the rest; offsets are contiguous from 0;
 * - every offset reads back its own batch (the indexes answer correctly), ListOffsets by
 *   timestamp and MAX_TIMESTAMP match a model;
 * - an append continues at logEndOffset, and a clean reopen after it sees the same log.
 *
 * Sealed segments' .log files are not damaged here: they were fsynced when sealed, so damage to
 * them is media corruption, not a torn write (their recovery is covered by partition-log.test.ts).
 * Logs here are not compacted (a compacted log may have offset gaps, see segment.ts).
 *
 * Seeds: RECOVERY_SEED=<n> replays case n alone; RECOVERY_CASES sets the count (default 1000).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BATCH_HEADER_BYTES,
  OFF_LEADER_EPOCH,
  readBatchHeader,
  validateBatchAt,
} from '../protocol/records/batch-header.js';
import { ManualClock, MemoryFileSystem, PartitionLog, segmentFileName } from './index.js';
import { buildBatch, decodeRecords } from './test-batches.js';

const DIR = '/recovery/t-0';

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rand {
  constructor(readonly next: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
}

interface ModelBatch {
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  values: string[];
}

/** Whole valid batches of a segment file, in order (stops at the first invalid byte). */
function parseSegment(buf: Buffer): Array<{ at: number; size: number; batch: ModelBatch }> {
  const out: Array<{ at: number; size: number; batch: ModelBatch }> = [];
  let at = 0;
  while (at + BATCH_HEADER_BYTES <= buf.length) {
    let size: number;
    try {
      size = validateBatchAt(buf, at, buf.length);
    } catch {
      break;
    }
    const h = readBatchHeader(buf, at);
    const values = decodeRecords(buf.subarray(at, at + size)).map((r) => r.value?.toString('utf8') ?? '');
    out.push({
      at,
      size,
      batch: {
        baseOffset: h.baseOffset,
        lastOffset: h.baseOffset + h.lastOffsetDelta,
        maxTimestamp: h.maxTimestamp,
        values,
      },
    });
    at += size;
  }
  return out;
}

/** Batches of `before` that survive as intact in `after`: the prefix up to the first changed one. */
function intactPrefix(before: Buffer, after: Buffer): ModelBatch[] {
  const kept: ModelBatch[] = [];
  for (const { at, size, batch } of parseSegment(before)) {
    if (at + size > after.length) break;
    let intact = true;
    for (let i = 0; i < size; i++) {
      if (before[at + i] === after[at + i]) continue;
      // partitionLeaderEpoch sits outside the CRC and recovery does not depend on it.
      if (i >= OFF_LEADER_EPOCH && i < OFF_LEADER_EPOCH + 4) continue;
      intact = false;
      break;
    }
    if (!intact) break;
    kept.push(batch);
  }
  return kept;
}

function expectedOffsetForTimestamp(
  batches: ModelBatch[],
  ts: number,
): { offset: number; timestamp: number } | null {
  for (const b of batches)
    if (b.maxTimestamp >= ts) return { offset: b.baseOffset, timestamp: b.maxTimestamp };
  return null;
}

function expectedMaxTimestamp(batches: ModelBatch[]): { offset: number; timestamp: number } {
  let best = { offset: -1, timestamp: -1 };
  for (const b of batches) {
    if (best.offset < 0 || b.maxTimestamp > best.timestamp)
      best = { offset: b.lastOffset, timestamp: b.maxTimestamp };
  }
  return best;
}

async function checkLog(log: PartitionLog, batches: ModelBatch[], what: string): Promise<void> {
  const end = batches.length === 0 ? 0 : batches[batches.length - 1]!.lastOffset + 1;
  assert.equal(log.logStartOffset, 0, `${what}: logStartOffset`);
  assert.equal(log.logEndOffset, end, `${what}: logEndOffset`);
  // Contiguous offsets, and every offset reads back its own batch.
  let next = 0;
  for (const b of batches) {
    assert.equal(b.baseOffset, next, `${what}: batches must be contiguous`);
    next = b.lastOffset + 1;
  }
  for (const b of batches) {
    for (let o = b.baseOffset; o <= b.lastOffset; o++) {
      const r = await log.read(o, 1);
      const recs = decodeRecords(r.records);
      assert.equal(
        recs[0]?.offset,
        b.baseOffset,
        `${what}: read(${o}) must start with batch ${b.baseOffset}`,
      );
      assert.equal(r.nextOffset, b.lastOffset + 1, `${what}: read(${o}).nextOffset`);
      assert.deepEqual(
        recs.map((x) => x.value?.toString('utf8') ?? ''),
        b.values,
        `${what}: values of batch ${b.baseOffset}`,
      );
    }
  }
  // One read of everything returns the whole log in order.
  const all = await log.read(0, 1 << 30);
  assert.equal(
    decodeRecords(all.records).length,
    batches.reduce((n, b) => n + b.values.length, 0),
    `${what}: full read`,
  );
  const probes = new Set<number>([-1, 0]);
  for (const b of batches) {
    probes.add(b.maxTimestamp);
    probes.add(b.maxTimestamp + 1);
    probes.add(b.maxTimestamp - 1);
  }
  for (const ts of probes) {
    assert.deepEqual(
      await log.offsetForTimestamp(ts),
      expectedOffsetForTimestamp(batches, ts),
      `${what}: offsetForTimestamp(${ts})`,
    );
  }
  assert.deepEqual(log.maxTimestampOffset(), expectedMaxTimestamp(batches), `${what}: maxTimestampOffset`);
}

type Damage = 'truncate' | 'flip' | 'garbage' | 'replay' | 'zero' | 'lose-active' | 'none';
type IndexDamage = 'delete' | 'truncate' | 'flip' | 'garbage' | 'zero' | 'swap';

function damageBytes(rand: Rand, buf: Buffer, kind: Exclude<IndexDamage, 'delete' | 'swap'>): Buffer {
  switch (kind) {
    case 'truncate':
      return buf.subarray(0, rand.int(0, Math.max(0, buf.length - 1)));
    case 'flip': {
      const out = Buffer.from(buf);
      if (out.length === 0) return out;
      const n = rand.int(1, 4);
      for (let i = 0; i < n; i++) {
        const at = rand.int(0, out.length - 1);
        out[at]! ^= 1 << rand.int(0, 7);
      }
      return out;
    }
    case 'garbage':
      return Buffer.concat([buf, rand.bytes(rand.int(1, 100))]);
    case 'zero': {
      const out = Buffer.from(buf);
      if (out.length === 0) return out;
      const at = rand.int(0, out.length - 1);
      out.fill(0, at, Math.min(out.length, at + rand.int(1, 64)));
      return out;
    }
  }
}

async function runCase(seed: number): Promise<string> {
  const rand = new Rand(prng(seed));
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  const warnings: string[] = [];
  const deps = { fs, clock, logger: { warn: (m: string) => warnings.push(m) } };
  const config = {
    segmentBytes: rand.pick([400, 700, 1500, 1 << 20]),
    indexIntervalBytes: rand.pick([0, 1, 60, 200, 4096]),
    retentionMs: -1,
  };
  let log = await PartitionLog.open(DIR, config, deps);
  const nBatches = rand.int(0, 40);
  let ts = 1_000_000;
  let valueNo = 0;
  for (let i = 0; i < nBatches; i++) {
    const n = rand.int(1, 5);
    const records = [];
    for (let k = 0; k < n; k++) {
      ts += rand.int(-30, 40);
      records.push({ value: `v${valueNo++}-${'x'.repeat(rand.int(0, 40))}`, timestampMs: Math.max(0, ts) });
    }
    await log.append(buildBatch(records));
    if (rand.chance(0.2)) await log.flush();
  }
  if (rand.chance(0.3)) {
    fs.crash(); // unsynced appends vanish; the old handles are dead
  } else {
    await log.close();
  }

  // What is on "disk" now, before damage.
  const names = (await fs.readdir(DIR)).sort();
  const bases = names
    .map((n) => /^(\d{20})\.log$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
  assert.ok(bases.length >= 1);
  const activeBase = bases[bases.length - 1]!;
  const activePath = `${DIR}/${segmentFileName(activeBase, '.log')}`;
  const sealed: ModelBatch[] = [];
  for (const b of bases.slice(0, -1)) {
    for (const p of parseSegment(fs.readFileSync(`${DIR}/${segmentFileName(b, '.log')}`)!))
      sealed.push(p.batch);
  }
  const before = fs.readFileSync(activePath)!;

  // Damage the active segment.
  const damage: Damage = rand.pick(['truncate', 'flip', 'garbage', 'replay', 'zero', 'lose-active', 'none']);
  let after = before;
  let activeLost = false;
  switch (damage) {
    case 'truncate':
      after = before.subarray(0, rand.int(0, before.length));
      break;
    case 'flip': {
      after = Buffer.from(before);
      if (after.length > 0) {
        // Mostly near the tail (a torn last write), sometimes anywhere.
        const from = rand.chance(0.7) ? Math.max(0, after.length - 200) : 0;
        const n = rand.int(1, 6);
        for (let i = 0; i < n; i++) after[rand.int(from, after.length - 1)]! ^= 1 << rand.int(0, 7);
      }
      break;
    }
    case 'garbage':
      after = Buffer.concat([
        before,
        rand.chance(0.5) ? rand.bytes(rand.int(1, 300)) : Buffer.alloc(rand.int(1, 300)),
      ]);
      break;
    case 'replay': {
      // A valid batch written again at the end (same offsets, or some later offset).
      const parsed = parseSegment(before);
      const src = parsed.length > 0 ? rand.pick(parsed) : null;
      if (src) {
        const copy = Buffer.from(before.subarray(src.at, src.at + src.size));
        if (rand.chance(0.5)) {
          // Shifted to a later offset — but never to exactly the log end: a copy that continues
          // the offsets contiguously is a valid append (its CRC does not cover baseOffset), and
          // recovery rightly keeps it.
          const end = parsed[parsed.length - 1]!.batch.lastOffset + 1;
          let base = src.batch.baseOffset + rand.int(1, 1000);
          if (base === end) base++;
          copy.writeBigInt64BE(BigInt(base), 0);
        }
        after = Buffer.concat([before, copy]);
      }
      break;
    }
    case 'zero': {
      after = Buffer.from(before);
      if (after.length > 0) {
        const at = rand.int(0, after.length - 1);
        after.fill(0, at, Math.min(after.length, at + rand.int(1, 200)));
      }
      break;
    }
    case 'lose-active':
      activeLost = bases.length > 1;
      break;
    case 'none':
      break;
  }
  if (activeLost) await fs.unlink(activePath);
  else fs.writeFileSync(activePath, after);

  // Damage index files: of sealed segments, and stale ones next to the active segment.
  const indexDamages: string[] = [];
  for (const b of bases.slice(0, -1)) {
    for (const suffix of ['.index', '.timeindex'] as const) {
      if (!rand.chance(0.35)) continue;
      const p = `${DIR}/${segmentFileName(b, suffix)}`;
      const kind: IndexDamage = rand.pick(['delete', 'truncate', 'flip', 'garbage', 'zero', 'swap']);
      indexDamages.push(`${kind} ${segmentFileName(b, suffix)}`);
      const cur = fs.readFileSync(p);
      if (kind === 'delete') {
        if (cur) await fs.unlink(p);
      } else if (kind === 'swap') {
        // The index of another sealed segment (well-formed, wrong log).
        const other = rand.pick(bases.slice(0, -1));
        const o = fs.readFileSync(`${DIR}/${segmentFileName(other, suffix)}`);
        if (o) fs.writeFileSync(p, o);
      } else if (cur) {
        fs.writeFileSync(p, damageBytes(rand, cur, kind));
      }
    }
  }
  if (!activeLost && rand.chance(0.15)) {
    for (const suffix of ['.index', '.timeindex'] as const) {
      fs.writeFileSync(`${DIR}/${segmentFileName(activeBase, suffix)}`, rand.bytes(rand.int(0, 5) * 12));
    }
    indexDamages.push('stale active indexes');
  }

  const kept = activeLost ? sealed : [...sealed, ...intactPrefix(before, after)];
  const what = `damage=${damage} indexes=[${indexDamages.join(', ')}] config=${JSON.stringify(config)}`;

  log = await PartitionLog.open(DIR, config, deps);
  await checkLog(log, kept, `after recovery (${what})`);

  // Appending continues at logEndOffset.
  const end = log.logEndOffset;
  const extra = { values: ['after-1', 'after-2'], maxTimestamp: ts + 5 };
  const r = await log.append(
    buildBatch(extra.values.map((value) => ({ value, timestampMs: extra.maxTimestamp }))),
  );
  assert.equal(r.baseOffset, end, `append after recovery starts at logEndOffset (${what})`);
  const withAppend = [
    ...kept,
    { baseOffset: end, lastOffset: end + 1, maxTimestamp: extra.maxTimestamp, values: extra.values },
  ];
  await checkLog(log, withAppend, `after append (${what})`);
  await log.flush();
  await log.close();

  // A clean reopen sees the same log, and no further truncation.
  log = await PartitionLog.open(DIR, config, deps);
  assert.equal(log.recovery.recoveredBytesTruncated, 0, `second reopen truncates nothing (${what})`);
  await checkLog(log, withAppend, `after second reopen (${what})`);
  await log.close();
  return damage;
}

test('recovery keeps every valid batch before the damage, drops the rest, and never throws', async () => {
  const only = process.env.RECOVERY_SEED;
  const cases = Number(process.env.RECOVERY_CASES ?? 1000);
  const base = only !== undefined ? Number(only) : Math.floor(Math.random() * 2 ** 31);
  const n = only !== undefined ? 1 : cases;
  console.log(`recovery property: ${n} cases from seed ${base} (replay one: RECOVERY_SEED=<seed>)`);
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const seed = base + i;
    try {
      const kind = await runCase(seed);
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    } catch (err) {
      throw new Error(`recovery case failed; replay with RECOVERY_SEED=${seed}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  console.log(`recovery property: damage kinds ${JSON.stringify(Object.fromEntries(counts))}`);
});
