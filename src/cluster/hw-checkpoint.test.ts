import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  HW_CHECKPOINT_FILE,
  partitionKey,
  readHighWatermarks,
  writeHighWatermarks,
} from './hw-checkpoint.js';

test('high watermarks round-trip through the checkpoint file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-hw-'));
  try {
    assert.equal((await readHighWatermarks(dir, () => {})).size, 0, 'no file: no entries');
    await writeHighWatermarks(dir, [
      { topic: 'orders', partition: 0, highWatermark: 42 },
      { topic: '__consumer_offsets', partition: 7, highWatermark: 0 },
    ]);
    const hw = await readHighWatermarks(dir, () => {});
    assert.equal(hw.get(partitionKey('orders', 0)), 42);
    assert.equal(hw.get(partitionKey('__consumer_offsets', 7)), 0);
    assert.equal(hw.size, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an unreadable checkpoint is reported and ignored (replicas start at 0)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-hw-'));
  try {
    for (const body of ['1\n1\nt 0 5\n', '0\n2\nt 0 5\n', '0\n1\nt x 5\n', 'garbage']) {
      await writeFile(join(dir, HW_CHECKPOINT_FILE), body);
      const warnings: string[] = [];
      const hw = await readHighWatermarks(dir, (m) => warnings.push(m));
      assert.equal(hw.size, 0, body);
      assert.equal(warnings.length, 1, body);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a checkpoint write the disk refuses (ENOSPC) leaves the old checkpoint and no temp file', async (t) => {
  if (!existsSync('/dev/full')) {
    t.skip('no /dev/full to make a write fail with ENOSPC');
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'sluice-hw-'));
  try {
    await writeHighWatermarks(dir, [{ topic: 'orders', partition: 0, highWatermark: 42 }]);
    // The temp file is opened with 'w', which follows a symlink: every write to it is ENOSPC.
    await symlink('/dev/full', join(dir, `${HW_CHECKPOINT_FILE}.tmp`));
    await assert.rejects(
      writeHighWatermarks(dir, [{ topic: 'orders', partition: 0, highWatermark: 99 }]),
      /ENOSPC/,
    );
    assert.equal(existsSync(join(dir, `${HW_CHECKPOINT_FILE}.tmp`)), false, 'the temp file is gone');
    const hw = await readHighWatermarks(dir, () => assert.fail('the old checkpoint is readable'));
    assert.equal(hw.get(partitionKey('orders', 0)), 42);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
