/**
 * Goal: on a single node, a long-poll fetch waiting on a partition is woken as soon as an append
 * makes records readable (the high watermark is the log end offset), not after the fsync that an
 * acks=all answer waits for; and that answer still waits for the fsync.
 * Method: a Partition on a MemoryFileSystem whose fdatasync is held at a gate the test opens;
 * no timers: the test waits for the fsync to have started, then looks at who was told what.
 */

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { encodeRecordBatch } from '../protocol/records/record-batch.js';
import { type LogFile, type LogFileSystem, MemoryFileSystem, PartitionLog } from '../storage/index.js';
import { TOPIC_CONFIG_DEFAULTS } from './config.js';
import { Partition } from './partition.js';

/** A MemoryFileSystem whose datasyncs wait while the gate is closed. */
class GatedFs implements LogFileSystem {
  readonly mem = new MemoryFileSystem();
  private gate: Promise<void> | null = null;
  private openGate: () => void = () => {};
  private onSync: (() => void) | null = null;

  /** Holds every later datasync; resolves when the first one is waiting. */
  hold(): Promise<void> {
    const started = new Promise<void>((resolve) => {
      this.onSync = resolve;
    });
    this.gate = new Promise<void>((resolve) => {
      this.openGate = resolve;
    });
    return started;
  }
  release(): void {
    this.gate = null;
    this.openGate();
  }

  async open(p: string): Promise<LogFile> {
    const f = await this.mem.open(p);
    const sync = async () => {
      if (this.gate) {
        this.onSync?.();
        await this.gate;
      }
      await f.datasync();
    };
    return {
      path: f.path,
      size: () => f.size(),
      append: (d) => f.append(d),
      read: (pos, len) => f.read(pos, len),
      readInto: f.readInto ? (t, pos, len) => f.readInto!(t, pos, len) : undefined,
      datasync: sync,
      truncate: (n) => f.truncate(n),
      close: () => f.close(),
    };
  }
  readdir = (d: string) => this.mem.readdir(d);
  mkdir = (d: string) => this.mem.mkdir(d);
  rename = (a: string, b: string) => this.mem.rename(a, b);
  unlink = (p: string) => this.mem.unlink(p);
  stat = (p: string) => this.mem.stat(p);
  rmrf = (d: string) => this.mem.rmrf(d);
  fsyncDir = (d: string) => this.mem.fsyncDir(d);
}

async function setup() {
  const fs = new GatedFs();
  const log = await PartitionLog.open('/t-0', {}, { fs, readPool: null, logger: { warn: () => {} } });
  const partition = new Partition('t', 0, log, { ...TOPIC_CONFIG_DEFAULTS }, Date.now);
  const batch = await encodeRecordBatch({
    records: ['a', 'b', 'c'].map((v) => ({ value: Buffer.from(v) })),
  });
  return { fs, log, partition, batch };
}

it('wakes long polls when an acks=all append is written, before its fsync; the answer waits for the fsync', async () => {
  const { fs, log, partition, batch } = await setup();
  let woken: { highWatermark: number; flushedOffset: number } | null = null;
  partition.onAppend(() => {
    woken = { highWatermark: partition.highWatermark, flushedOffset: log.flushedOffset };
  });
  let acknowledged = false;
  const syncStarted = fs.hold();
  const append = partition.appendBatches(batch, -1).then((r) => {
    acknowledged = true;
    return r;
  });
  await syncStarted;
  assert.deepEqual(
    woken,
    { highWatermark: 3, flushedOffset: 0 },
    'woken with the records readable, not yet durable',
  );
  assert.equal(acknowledged, false, 'acks=all is not answered before the fsync');
  // What a woken fetch reads meanwhile: the records (visible once written, as before this change).
  const read = await log.read(0, 1 << 20);
  assert.equal(read.nextOffset, 3);
  fs.release();
  const r = await append;
  assert.equal(acknowledged, true);
  assert.equal(r.baseOffset, 0);
  assert.equal(log.flushedOffset, 3, 'acknowledged only once durable');
});

it('wakes long polls for acks=1 without any fsync (flush.messages default)', async () => {
  const { log, partition, batch } = await setup();
  let wokenAt = -1;
  partition.onAppend(() => {
    wokenAt = partition.highWatermark;
  });
  await partition.appendBatches(batch, 1);
  assert.equal(wokenAt, 3);
  assert.equal(log.flushedOffset, 0, 'acks=1 does not fsync by default');
});
