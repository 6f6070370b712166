/**
 * Goal: ChunkedReader reuses one buffer for every chunk it reads, and the scans built on it
 * (header scans, start-up recovery with CRC checks) still see every batch right, including
 * batches that straddle a chunk boundary, where the read of the whole batch overwrites the chunk
 * that held its header.
 * Method: batches of varied sizes in a MemoryFileSystem file, scanned with chunk sizes from a
 * header's length up; and a PartitionLog whose active segment is larger than recovery's 1 MiB
 * chunk, reopened (recovery re-validates it batch by batch) with nothing cut.
 */

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { BATCH_HEADER_BYTES, patchBaseOffset } from '../protocol/records/batch-header.js';
import { MemoryFileSystem, PartitionLog } from './index.js';
import { ChunkedReader, scanHeaders } from './segment.js';
import { valuesBatch } from './test-batches.js';

function batches(count: number, sizeOf: (i: number) => number): { bytes: Buffer; bases: number[] } {
  const parts: Buffer[] = [];
  const bases: number[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const n = (i % 3) + 1;
    const b = valuesBatch(
      Array.from({ length: n }, (_, k) => `${i}-${k}-`.padEnd(sizeOf(i), 'v')),
      1_000,
    );
    patchBaseOffset(b, 0, offset);
    bases.push(offset);
    offset += n;
    parts.push(b);
  }
  return { bytes: Buffer.concat(parts), bases };
}

it('scans every batch header with chunks of any size, reusing one buffer', async () => {
  const fs = new MemoryFileSystem();
  const { bytes, bases } = batches(60, (i) => 1 + ((i * 37) % 500));
  const f = await fs.open('/scan.log');
  await f.append(bytes);
  for (const chunk of [BATCH_HEADER_BYTES, 100, 777, 4096, 1 << 20]) {
    const reader = new ChunkedReader(f, bytes.length, chunk);
    const seen: number[] = [];
    let end = 0;
    for await (const b of scanHeaders(reader, 0, bytes.length, 'scan.log')) {
      seen.push(b.header.baseOffset);
      assert.equal(b.position, end, `position of batch ${seen.length} (chunk ${chunk})`);
      end = b.position + b.sizeBytes;
    }
    assert.deepEqual(seen, bases, `chunk ${chunk}`);
    assert.equal(end, bytes.length);
  }
});

it('recovers an active segment larger than the recovery chunk, batches straddling it, cutting nothing', async () => {
  const fs = new MemoryFileSystem();
  const dir = '/big/topic-0';
  let log = await PartitionLog.open(dir, {}, { fs, logger: { warn: () => {} }, readPool: null });
  let records = 0;
  // ~2.8 MiB of batches of 3-9 KB: several straddle the 1 MiB boundary of recovery's chunks.
  for (let i = 0; i < 480; i++) {
    const n = (i % 3) + 1;
    const size = 3000 + ((i * 131) % 6000);
    await log.append(
      valuesBatch(
        Array.from({ length: n }, () => 'x'.repeat(Math.floor(size / n))),
        1_000,
      ),
    );
    records += n;
  }
  assert.ok(log.sizeBytes > 2.5 * (1 << 20), `segment of ${log.sizeBytes} bytes`);
  await log.flush();
  await log.close();
  const warnings: string[] = [];
  log = await PartitionLog.open(dir, {}, { fs, logger: { warn: (m) => warnings.push(m) }, readPool: null });
  try {
    assert.equal(log.recoveredBytesTruncated, 0, warnings.join('\n'));
    assert.equal(log.logEndOffset, records);
    let next = 0;
    while (next < records) {
      const r = await log.read(next, 64 * 1024);
      assert.ok(r.nextOffset > next);
      next = r.nextOffset;
    }
  } finally {
    await log.close();
  }
});
