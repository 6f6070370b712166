/**
 * DurableRaftLog on MemoryFileSystem: round trips against SimDisk (the reference persistence
 * behaviour), crashes that lose the unsynced tail, torn and corrupt tails, corrupt small files,
 * snapshots with log generations, and crashes in the middle of a generation switch.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SimDisk } from '../sim/disk.js';
import { Prng } from '../sim/prng.js';
import type { LogFile, LogFileSystem } from '../storage/fs.js';
import { MemoryFileSystem } from '../storage/memory-fs.js';
import { CorruptRaftStateError, DurableRaftLog } from './durable-log.js';
import type { LogEntry } from './log.js';
import type { Snapshot } from './messages.js';
import type { DurableState, HardState, PersistWrite } from './persistence.js';

const DIR = '/data/raft';

function entry(index: number, term: number, text = `e${index}`): LogEntry {
  return { index, term, kind: index % 7 === 0 ? 'noop' : 'data', data: Buffer.from(text) };
}

function entries(from: number, to: number, term: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

let writeSeq = 1;
function w(parts: Partial<Omit<PersistWrite, 'writeId'>>): PersistWrite {
  return {
    writeId: writeSeq++,
    snapshot: parts.snapshot,
    truncateFromIndex: parts.truncateFromIndex ?? parts.entries?.[0]?.index,
    entries: parts.entries ?? [],
    hardState: parts.hardState,
  };
}

function quietLogger(): { warn(msg: string): void; warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (msg: string) => warnings.push(msg) };
}

async function open(fs: LogFileSystem, logger = quietLogger()) {
  const store = new DurableRaftLog(fs, DIR, { logger });
  const state = await store.recover();
  return { store, state, logger };
}

function norm(s: DurableState) {
  return {
    hardState: s.hardState,
    snapshot: s.snapshot && {
      index: s.snapshot.index,
      term: s.snapshot.term,
      data: Buffer.from(s.snapshot.data),
    },
    entries: s.entries.map((e) => ({
      index: e.index,
      term: e.term,
      kind: e.kind,
      data: Buffer.from(e.data),
    })),
  };
}

async function logFiles(fs: MemoryFileSystem): Promise<string[]> {
  return (await fs.readdir(DIR)).filter((n) => n.startsWith('log-'));
}

describe('DurableRaftLog', () => {
  test('an empty store recovers empty', async () => {
    const fs = new MemoryFileSystem();
    const { state } = await open(fs);
    assert.deepEqual(norm(state), {
      hardState: { term: 0, votedFor: undefined },
      snapshot: undefined,
      entries: [],
    });
    const again = await open(fs);
    assert.deepEqual(norm(again.state), norm(state));
    assert.equal(again.logger.warnings.length, 0);
  });

  test('writes round-trip: appends, truncation, hard state', async () => {
    const fs = new MemoryFileSystem();
    const { store } = await open(fs);
    await store.write(w({ hardState: { term: 1, votedFor: 2 }, entries: entries(1, 5, 1) }));
    await store.write(w({ entries: entries(6, 8, 1) }));
    // A new leader overwrites 5.. with its own entries.
    await store.write(
      w({ hardState: { term: 3, votedFor: undefined }, truncateFromIndex: 5, entries: entries(5, 6, 3) }),
    );
    await store.close();
    const { state, logger } = await open(fs);
    assert.deepEqual(state.hardState, { term: 3, votedFor: undefined });
    assert.deepEqual(
      state.entries.map((e) => [e.index, e.term]),
      [
        [1, 1],
        [2, 1],
        [3, 1],
        [4, 1],
        [5, 3],
        [6, 3],
      ],
    );
    assert.equal(Buffer.from(state.entries[0]!.data).toString(), 'e1');
    assert.equal(state.entries[6 - 1]!.kind, 'data');
    assert.equal(logger.warnings.length, 0);
  });

  test('matches SimDisk over random write sequences, recovering at random points', async () => {
    for (let seed = 1; seed <= 30; seed++) {
      const prng = new Prng(seed);
      const fs = new MemoryFileSystem();
      let { store } = await open(fs);
      const sim = new SimDisk();
      // A model of the in-memory log that produces valid writes.
      let snapIndex = 0;
      let snapTerm = 0;
      let log: LogEntry[] = [];
      let term = 1;
      let id = 1;
      const inflight: Promise<void>[] = [];
      for (let step = 0; step < 60; step++) {
        const lastIndex = snapIndex + log.length;
        let write: PersistWrite;
        const r = prng.next();
        if (r < 0.5) {
          if (prng.chance(0.2)) term++;
          const n = prng.int(1, 5);
          const add = entries(lastIndex + 1, lastIndex + n, term);
          log.push(...add);
          write = {
            writeId: id++,
            snapshot: undefined,
            truncateFromIndex: lastIndex + 1,
            entries: add,
            hardState: prng.chance(0.3) ? { term, votedFor: prng.int(1, 3) } : undefined,
          };
        } else if (r < 0.7 && log.length > 0) {
          term++;
          const from = prng.int(snapIndex + 1, lastIndex);
          log = log.filter((e) => e.index < from);
          const add = entries(from, from + prng.int(0, 3), term);
          log.push(...add);
          write = {
            writeId: id++,
            snapshot: undefined,
            truncateFromIndex: from,
            entries: add,
            hardState: { term, votedFor: undefined },
          };
        } else if (r < 0.85 && log.length > 0) {
          const at = prng.int(snapIndex + 1, lastIndex);
          const atTerm = log.find((e) => e.index === at)!.term;
          const snapshot: Snapshot = { index: at, term: atTerm, data: Buffer.from(`state@${at}`) };
          log = log.filter((e) => e.index > at);
          snapIndex = at;
          snapTerm = atTerm;
          // Sometimes entries appended in the same write.
          const add = prng.chance(0.5)
            ? entries(snapIndex + log.length + 1, snapIndex + log.length + 2, term)
            : [];
          log.push(...add);
          write = {
            writeId: id++,
            snapshot,
            truncateFromIndex: add[0]?.index,
            entries: add,
            hardState: undefined,
          };
        } else if (r < 0.92) {
          // InstallSnapshot from a leader, beyond our log: the whole log goes.
          term++;
          const at = snapIndex + log.length + prng.int(1, 10);
          const snapshot: Snapshot = { index: at, term, data: Buffer.from(`leader@${at}`) };
          write = {
            writeId: id++,
            snapshot,
            truncateFromIndex: snapIndex + 1,
            entries: [],
            hardState: { term, votedFor: undefined },
          };
          log = [];
          snapIndex = at;
          snapTerm = term;
        } else {
          term++;
          write = {
            writeId: id++,
            snapshot: undefined,
            truncateFromIndex: undefined,
            entries: [],
            hardState: { term, votedFor: prng.int(1, 3) },
          };
        }
        sim.submit(write, 0);
        sim.completeDue(0);
        // Half the writes queue behind earlier ones, so they share an fsync (group commit).
        const done = store.write(write);
        if (prng.chance(0.5)) await done;
        else inflight.push(done);
        if (prng.chance(0.15)) {
          await Promise.all(inflight.splice(0));
          await store.close();
          const reopened = await open(fs);
          assert.equal(
            reopened.logger.warnings.length,
            0,
            `seed ${seed} step ${step}: ${reopened.logger.warnings}`,
          );
          assert.deepEqual(norm(reopened.state), norm(sim.durableState()), `seed ${seed} step ${step}`);
          store = reopened.store;
          assert.ok((await logFiles(fs)).length === 1);
        }
      }
      assert.equal(snapTerm >= 0, true);
      await Promise.all(inflight.splice(0));
      await store.close();
      const final = await open(fs);
      assert.deepEqual(norm(final.state), norm(sim.durableState()), `seed ${seed} final`);
      await final.store.close();
    }
  });

  test('a crash loses only the write whose fsync had not finished', async () => {
    const fs = new MemoryFileSystem();
    const gate = new GatedFs(fs);
    const { store } = await open(gate);
    await store.write(w({ hardState: { term: 1, votedFor: 1 }, entries: entries(1, 3, 1) }));
    gate.blockDatasync = true;
    const pending = store.write(w({ entries: entries(4, 6, 1) }));
    pending.catch(() => {});
    await gate.blocked;
    assert.ok(fs.unsyncedBytes(`${DIR}/log-0000000000.raft`) > 0, 'bytes written but not synced');
    fs.crash();
    const { state, logger } = await open(fs);
    assert.deepEqual(
      state.entries.map((e) => e.index),
      [1, 2, 3],
    );
    assert.deepEqual(state.hardState, { term: 1, votedFor: 1 });
    assert.equal(logger.warnings.length, 0, 'a clean crash leaves no torn record');
  });

  test('a torn tail is truncated with one warning, and the log carries on', async () => {
    const fs = new MemoryFileSystem();
    const { store } = await open(fs);
    await store.write(w({ entries: entries(1, 4, 1) }));
    await store.close();
    const p = `${DIR}/log-0000000000.raft`;
    const bytes = fs.readFileSync(p)!;
    fs.writeFileSync(p, bytes.subarray(0, bytes.length - 3));
    const r = await open(fs);
    assert.deepEqual(
      r.state.entries.map((e) => e.index),
      [1, 2, 3],
    );
    assert.equal(r.logger.warnings.length, 1);
    assert.match(r.logger.warnings[0]!, /torn record body/);
    await r.store.write(w({ entries: entries(4, 5, 2) }));
    await r.store.close();
    const again = await open(fs);
    assert.deepEqual(
      again.state.entries.map((e) => [e.index, e.term]),
      [
        [1, 1],
        [2, 1],
        [3, 1],
        [4, 2],
        [5, 2],
      ],
    );
    assert.equal(again.logger.warnings.length, 0);
  });

  test('a corrupt record ends the log there (checksum), even mid-file', async () => {
    const fs = new MemoryFileSystem();
    const { store } = await open(fs);
    await store.write(w({ entries: entries(1, 5, 1) }));
    await store.close();
    const p = `${DIR}/log-0000000000.raft`;
    const bytes = fs.readFileSync(p)!;
    const at = bytes.indexOf(Buffer.from('e3'));
    bytes[at] = 0x58;
    fs.writeFileSync(p, bytes);
    const r = await open(fs);
    assert.deepEqual(
      r.state.entries.map((e) => e.index),
      [1, 2],
    );
    assert.equal(r.logger.warnings.length, 1);
    assert.match(r.logger.warnings[0]!, /checksum mismatch/);
    assert.ok(fs.readFileSync(p)!.length < bytes.length);
  });

  test('a huge length prefix is treated as corruption, not allocated', async () => {
    const fs = new MemoryFileSystem();
    const { store } = await open(fs);
    await store.write(w({ entries: entries(1, 2, 1) }));
    await store.close();
    const p = `${DIR}/log-0000000000.raft`;
    const bytes = fs.readFileSync(p)!;
    const tail = Buffer.alloc(12);
    tail.writeUInt32BE(0xfffffff0, 0);
    fs.writeFileSync(p, Buffer.concat([bytes, tail]));
    const r = await open(fs);
    assert.deepEqual(
      r.state.entries.map((e) => e.index),
      [1, 2],
    );
    assert.match(r.logger.warnings[0]!, /record length/);
  });

  test('damaged hard state, snapshot or log header raise CorruptRaftStateError', async () => {
    for (const [name, damage] of [
      [
        'hardstate',
        (b: Buffer) => {
          b[b.length - 1]! ^= 1;
        },
      ],
      [
        'hardstate',
        (b: Buffer) => {
          b[0] = 0;
        },
      ],
      [
        'snapshot',
        (b: Buffer) => {
          b[10]! ^= 0x40;
        },
      ],
      [
        'snapshot',
        (b: Buffer) => {
          b[4] = 9;
        },
      ],
      [
        'log-0000000001.raft',
        (b: Buffer) => {
          b[1] = 0;
        },
      ],
    ] as const) {
      const fs = new MemoryFileSystem();
      const { store } = await open(fs);
      await store.write(w({ hardState: { term: 2, votedFor: 1 }, entries: entries(1, 4, 2) }));
      await store.write(w({ snapshot: { index: 2, term: 2, data: Buffer.from('snap') } }));
      await store.close();
      const p = `${DIR}/${name}`;
      const b = fs.readFileSync(p)!;
      damage(b);
      fs.writeFileSync(p, b);
      await assert.rejects(open(fs), (err: unknown) => err instanceof CorruptRaftStateError, name);
    }
    // A truncated small file is corrupt too (never torn: it is replaced atomically).
    const fs = new MemoryFileSystem();
    const { store } = await open(fs);
    await store.write(w({ hardState: { term: 2, votedFor: 1 } }));
    await store.close();
    fs.writeFileSync(`${DIR}/hardstate`, fs.readFileSync(`${DIR}/hardstate`)!.subarray(0, 6));
    await assert.rejects(open(fs), CorruptRaftStateError);
  });

  test('snapshot: compaction starts a new generation; recovery sees snapshot + remaining entries', async () => {
    const fs = new MemoryFileSystem();
    const { store } = await open(fs);
    await store.write(w({ hardState: { term: 2, votedFor: 1 }, entries: entries(1, 10, 2) }));
    await store.write(w({ snapshot: { index: 6, term: 2, data: Buffer.from('image@6') } }));
    assert.deepEqual(await logFiles(fs), ['log-0000000001.raft']);
    await store.write(w({ entries: entries(11, 12, 3), hardState: { term: 3, votedFor: undefined } }));
    await store.write(
      w({ truncateFromIndex: 12, entries: [entry(12, 4)], hardState: { term: 4, votedFor: 2 } }),
    );
    await store.close();
    const r = await open(fs);
    assert.equal(r.logger.warnings.length, 0);
    assert.deepEqual(r.state.snapshot && [r.state.snapshot.index, r.state.snapshot.term], [6, 2]);
    assert.equal(Buffer.from(r.state.snapshot!.data).toString(), 'image@6');
    assert.deepEqual(
      r.state.entries.map((e) => [e.index, e.term]),
      [
        [7, 2],
        [8, 2],
        [9, 2],
        [10, 2],
        [11, 3],
        [12, 4],
      ],
    );
    assert.deepEqual(r.state.hardState, { term: 4, votedFor: 2 });
    // A second compaction, then an InstallSnapshot beyond the log.
    await r.store.write(w({ snapshot: { index: 12, term: 4, data: Buffer.from('image@12') } }));
    await r.store.write(
      w({
        snapshot: { index: 40, term: 5, data: Buffer.from('leader@40') },
        truncateFromIndex: 13,
        hardState: { term: 5, votedFor: undefined },
      }),
    );
    await r.store.write(w({ entries: entries(41, 42, 5) }));
    await r.store.close();
    const r2 = await open(fs);
    assert.deepEqual(r2.state.snapshot && [r2.state.snapshot.index, r2.state.snapshot.term], [40, 5]);
    assert.deepEqual(
      r2.state.entries.map((e) => e.index),
      [41, 42],
    );
    assert.deepEqual(await logFiles(fs), ['log-0000000003.raft']);
  });

  test('a crash in the middle of a generation switch keeps the old snapshot and log', async () => {
    const fs = new MemoryFileSystem();
    const gate = new GatedFs(fs);
    const { store } = await open(gate);
    await store.write(w({ entries: entries(1, 8, 1) }));
    await store.write(w({ snapshot: { index: 3, term: 1, data: Buffer.from('s3') } }));
    // The new generation's file is written and synced; the snapshot rename never happens.
    gate.failRenameTo = `${DIR}/snapshot`;
    await assert.rejects(store.write(w({ snapshot: { index: 6, term: 1, data: Buffer.from('s6') } })));
    assert.deepEqual(await logFiles(fs), ['log-0000000001.raft', 'log-0000000002.raft']);
    fs.crash();
    const r = await open(fs);
    assert.deepEqual(r.state.snapshot?.index, 3);
    assert.deepEqual(
      r.state.entries.map((e) => e.index),
      [4, 5, 6, 7, 8],
    );
    assert.deepEqual(await logFiles(fs), ['log-0000000001.raft']);
    assert.deepEqual(await fs.readdir(DIR), ['log-0000000001.raft', 'snapshot']);
  });

  test('after an I/O failure the store refuses further writes', async () => {
    const fs = new MemoryFileSystem();
    const gate = new GatedFs(fs);
    const { store } = await open(gate);
    gate.failDatasync = true;
    await assert.rejects(store.write(w({ entries: entries(1, 1, 1) })), /raft log write failed/);
    gate.failDatasync = false;
    await assert.rejects(store.write(w({ entries: entries(2, 2, 1) })), /raft log write failed/);
  });
});

/** A LogFileSystem wrapper that can hold or fail datasync and fail a rename, for crash tests. */
class GatedFs implements LogFileSystem {
  blockDatasync = false;
  failDatasync = false;
  failRenameTo: string | undefined;
  private release: (() => void) | undefined;
  blocked: Promise<void>;
  constructor(private readonly inner: MemoryFileSystem) {
    this.blocked = new Promise((resolve) => {
      this.release = resolve;
    });
  }
  async open(p: string): Promise<LogFile> {
    const f = await this.inner.open(p);
    const gate = this;
    return {
      path: f.path,
      size: () => f.size(),
      append: (d) => f.append(d),
      read: (pos, len) => f.read(pos, len),
      truncate: (n) => f.truncate(n),
      close: () => f.close(),
      async datasync() {
        if (gate.failDatasync) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
        if (gate.blockDatasync) {
          gate.release?.();
          await new Promise(() => {});
        }
        return f.datasync();
      },
    };
  }
  readdir(d: string) {
    return this.inner.readdir(d);
  }
  mkdir(d: string) {
    return this.inner.mkdir(d);
  }
  async rename(a: string, b: string) {
    if (b === this.failRenameTo) throw Object.assign(new Error('EIO: simulated rename'), { code: 'EIO' });
    return this.inner.rename(a, b);
  }
  unlink(p: string) {
    return this.inner.unlink(p);
  }
  stat(p: string) {
    return this.inner.stat(p);
  }
  rmrf(d: string) {
    return this.inner.rmrf(d);
  }
  fsyncDir(d: string) {
    return this.inner.fsyncDir(d);
  }
}
