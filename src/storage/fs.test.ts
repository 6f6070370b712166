/**
 * Goal: NodeFileSystem's appends land at the file's end in order, whether written synchronously
 * (up to SYNC_WRITE_MAX_BYTES) or through the thread pool (larger), and read back byte for byte.
 * Method: a temporary file; appends of sizes on both sides of the threshold, then reads.
 */

import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { NodeFileSystem, SYNC_WRITE_MAX_BYTES } from './fs.js';

it('appends small (synchronous) and large (thread pool) writes in order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-fs-'));
  try {
    const fs = new NodeFileSystem();
    const f = await fs.open(join(dir, 'a.log'));
    const sizes = [1, 4096, SYNC_WRITE_MAX_BYTES, SYNC_WRITE_MAX_BYTES + 1, 10, 3 * SYNC_WRITE_MAX_BYTES, 7];
    const parts = sizes.map((n) => randomFillSync(Buffer.alloc(n)));
    for (const p of parts) await f.append(p);
    const all = Buffer.concat(parts);
    assert.equal(await f.size(), all.length);
    assert.ok((await f.read(0, all.length)).equals(all));
    await f.datasync();
    await f.close();
    const again = await fs.open(join(dir, 'a.log'));
    assert.equal(await again.size(), all.length, 'the size as the OS reports it on reopening');
    await again.append(Buffer.from('end'));
    assert.equal((await again.read(all.length, 3)).toString(), 'end');
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
