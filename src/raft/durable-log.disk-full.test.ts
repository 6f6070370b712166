/**
 * The Raft metadata log on a full disk (MemoryFileSystem with a byte budget). What must hold:
 * - a write that does not fit rejects (so RaftDriver never reports it durable: RaftNode holds
 *   every vote and acknowledgement until diskWritten, and the driver goes fatal instead), and so
 *   does every later write;
 * - a hard state (term, vote) that does not fit leaves the old one intact, and no temp file;
 * - after a restart with space freed, recovery yields exactly the writes that resolved: the
 *   partial record is cut, the hard state is the last durable one.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryFileSystem } from '../storage/memory-fs.js';
import { DurableRaftLog, RaftStorageError } from './durable-log.js';
import type { LogEntry } from './log.js';
import type { PersistWrite } from './persistence.js';

const DIR = '/data/raft';

function entries(from: number, to: number, term: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, kind: 'data', data: Buffer.alloc(40, i) });
  return out;
}

let writeSeq = 1;
function w(parts: Partial<Omit<PersistWrite, 'writeId'>>): PersistWrite {
  return {
    writeId: writeSeq++,
    snapshot: undefined,
    truncateFromIndex: parts.truncateFromIndex ?? parts.entries?.[0]?.index,
    entries: parts.entries ?? [],
    hardState: parts.hardState,
  };
}

async function open(fs: MemoryFileSystem) {
  const warnings: string[] = [];
  const store = new DurableRaftLog(fs, DIR, { logger: { warn: (m) => warnings.push(m) } });
  const state = await store.recover();
  return { store, state, warnings };
}

describe('DurableRaftLog on a full disk', () => {
  test('an append that does not fit rejects, and recovery keeps exactly the durable writes', async () => {
    const fs = new MemoryFileSystem();
    const { store } = await open(fs);
    await store.write(w({ hardState: { term: 1, votedFor: 1 }, entries: entries(1, 5, 1) }));
    fs.capacityBytes = fs.usedBytes() + 50; // one record and a bit
    const failed = store.write(w({ entries: entries(6, 9, 1) }));
    const err = await failed.then(
      () => assert.fail('the write should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RaftStorageError);
    assert.match(String((err.cause as Error | undefined)?.message), /ENOSPC/);
    // Every later write is refused too, even once space is back: the node is fatal until restart.
    fs.capacityBytes = Number.POSITIVE_INFINITY;
    await assert.rejects(store.write(w({ hardState: { term: 2, votedFor: 3 } })), RaftStorageError);
    await store.close();

    const again = await open(fs);
    assert.deepEqual(
      again.state.entries.map((e) => e.index),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(again.state.hardState, { term: 1, votedFor: 1 });
    assert.equal(again.warnings.length, 1, 'the torn record is cut, with one warning');
    await again.store.write(w({ entries: entries(6, 6, 1) }));
    await again.store.close();
    const third = await open(fs);
    assert.deepEqual(
      third.state.entries.map((e) => e.index),
      [1, 2, 3, 4, 5, 6],
    );
    assert.equal(third.warnings.length, 0);
    await third.store.close();
  });

  test('a vote that does not fit leaves the old hard state and no temp file', async () => {
    const fs = new MemoryFileSystem();
    const { store } = await open(fs);
    await store.write(w({ hardState: { term: 4, votedFor: 2 }, entries: entries(1, 1, 4) }));
    fs.capacityBytes = fs.usedBytes() + 5;
    await assert.rejects(store.write(w({ hardState: { term: 5, votedFor: 3 } })), RaftStorageError);
    assert.deepEqual(
      (await fs.readdir(DIR)).filter((n) => n.endsWith('.tmp')),
      [],
      'no temp file is left behind',
    );
    await store.close();
    fs.capacityBytes = Number.POSITIVE_INFINITY;
    const again = await open(fs);
    assert.deepEqual(again.state.hardState, { term: 4, votedFor: 2 });
    assert.deepEqual(
      again.state.entries.map((e) => e.index),
      [1],
    );
    await again.store.close();
  });
});
