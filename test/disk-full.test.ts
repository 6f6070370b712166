/**
 * Goal: a full disk never crashes the broker nor loses or corrupts acknowledged records, and the
 * broker recovers by itself once space is freed.
 * Method: a real broker process whose data dir sits on a 16 MiB tmpfs, most of which a filler
 * file takes. acks=-1 produces of incompressible records (segments of 512 KiB, so several roll,
 * which writes index files too) run until the disk is full. Then:
 * - every failed produce is answered KAFKA_STORAGE_ERROR, and the broker keeps running;
 * - the partition holds exactly the acknowledged records, at their acknowledged offsets;
 * - after the filler is deleted, produces succeed again, continuing at the next offset;
 * - after a restart every acknowledged record is still there, nothing else is, and every
 *   segment file is a whole number of CRC-valid batches.
 * Then the same with a 3-node cluster (replication factor 3, min.insync.replicas=2) where only
 * node 3's data dir is on the small tmpfs: whether node 3 leads the partition (its produces fail
 * with KAFKA_STORAGE_ERROR, it stays leader) or follows it (it retries, drops out of the ISR, the
 * others go on), after freeing space it is back in the ISR and its files hold every acknowledged
 * record at its acknowledged offset, and no node died.
 * Needs root and a kernel that lets it mount tmpfs; the tests skip (saying why) only when the
 * mount is refused. The tmpfs is unmounted in a finally block.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, errorName } from '../src/protocol/errors.js';
import { ApiKey } from '../src/protocol/generated/index.js';
import {
  completeBatchOffsets,
  decodeRecordBatch,
  decodeRecordBatches,
} from '../src/protocol/records/index.js';
import { BrokerProcess, freePort } from './helpers/broker-process.js';
import { PRODUCE_VERSION, createTopic, produceBody, readPartition } from './helpers/read-partition.js';
import { WireClient } from './helpers/wire-client.js';

const TMPFS_BYTES = 16 << 20;
const RECORD_BYTES = 4096;
const RECORDS_PER_BATCH = 8;

/** Mounts a tmpfs of `bytes` at a fresh directory; a string says why it could not. */
function mountTmpfs(bytes: number): { dir: string } | string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-diskfull-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const e = err as { stderr?: Buffer; message: string };
    return (e.stderr?.toString().trim() || e.message).split('\n')[0]!;
  }
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  }
  rmSync(dir, { recursive: true, force: true });
}

function assertSegmentsClean(dir: string): void {
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.log'))) {
    const buf = readFileSync(join(dir, name));
    const spans = completeBatchOffsets(buf);
    const last = spans[spans.length - 1];
    const end = last ? last.at + last.size : 0;
    assert.equal(end, buf.length, `${name}: ${buf.length - end} bytes after the last whole batch`);
  }
}

interface Acked {
  baseOffset: number;
  values: string[];
}

async function produceOnce(
  client: WireClient,
  topic: string,
  values: string[],
): Promise<{ errorCode: number; baseOffset: number; message: string | null }> {
  const body = await produceBody(
    topic,
    0,
    values.map((v) => ({ key: null, value: Buffer.from(v, 'latin1') })),
    -1,
  );
  const res = await client.request(ApiKey.Produce, PRODUCE_VERSION, body);
  const p = res.responses[0]!.partitionResponses[0]!;
  return { errorCode: p.errorCode, baseOffset: Number(p.baseOffset), message: p.errorMessage ?? null };
}

let seq = 0;
/** Incompressible values, each starting with a unique tag. */
function nextValues(): string[] {
  return Array.from({ length: RECORDS_PER_BATCH }, () => {
    const tag = `v${seq++}:`;
    return tag + randomBytes(RECORD_BYTES).toString('latin1').slice(tag.length);
  });
}

async function assertContents(port: number, topic: string, acked: Acked[]): Promise<void> {
  const got = await readPartition(port, topic, 0);
  const expected = acked.flatMap((a) => a.values.map((v, i) => ({ offset: a.baseOffset + i, value: v })));
  assert.equal(got.records.length, expected.length, 'the partition holds exactly the acknowledged records');
  for (let i = 0; i < expected.length; i++) {
    const r = got.records[i]!;
    assert.equal(r.offset, expected[i]!.offset, `record ${i}: offset`);
    assert.ok(r.value?.toString('latin1') === expected[i]!.value, `record ${i} (offset ${r.offset}): value`);
  }
}

test('a full disk: KAFKA_STORAGE_ERROR, no crash, nothing acknowledged lost, recovers once space is freed', async (t) => {
  const mounted = mountTmpfs(TMPFS_BYTES);
  if (typeof mounted === 'string') {
    console.log(`# skipping: cannot mount a tmpfs here (${mounted})`);
    t.skip(`cannot mount a tmpfs: ${mounted}`);
    return;
  }
  const mount = mounted.dir;
  let broker: BrokerProcess | undefined;
  try {
    const dataDir = join(mount, 'data');
    mkdirSync(dataDir);
    broker = await BrokerProcess.start({ dataDir });
    const topic = 'full';
    await createTopic(broker.port, topic, 1, { 'segment.bytes': String(512 * 1024) });
    const client = await WireClient.connect(broker.port);
    const acked: Acked[] = [];
    let expectedNext = 0;
    try {
      // Leave about 3 MiB for the broker.
      const free = statfsSync(mount).bavail * statfsSync(mount).bsize;
      writeFileSync(join(mount, 'filler'), Buffer.alloc(Math.max(0, free - (3 << 20))));

      // 1. Produce until the disk is full, then a few more times.
      const failures: string[] = [];
      for (let i = 0; i < 2000 && failures.length < 20; i++) {
        const values = nextValues();
        const r = await produceOnce(client, topic, values);
        if (r.errorCode === ErrorCode.NONE) {
          assert.equal(r.baseOffset, expectedNext, 'a successful produce continues at the log end');
          acked.push({ baseOffset: r.baseOffset, values });
          expectedNext += values.length;
        } else {
          failures.push(`${errorName(r.errorCode)}: ${r.message}`);
          assert.equal(
            r.errorCode,
            ErrorCode.KAFKA_STORAGE_ERROR,
            `a produce that cannot be written: ${errorName(r.errorCode)} ${r.message}`,
          );
        }
      }
      t.diagnostic(
        `acknowledged ${acked.length} batches before the disk filled; first failure: ${failures[0]}`,
      );
      assert.ok(failures.length > 0, 'the disk filled up');
      assert.ok(acked.length > 0, 'some produces succeeded first');
      assert.ok(broker.running, `the broker is still running; output:\n${broker.output.slice(-4000)}`);

      // 2. Readers see exactly the acknowledged records.
      await assertContents(broker.port, topic, acked);

      // 3. Free space: produces succeed again, at the next offset.
      rmSync(join(mount, 'filler'));
      for (let i = 0; i < 10; i++) {
        const values = nextValues();
        const r = await produceOnce(client, topic, values);
        assert.equal(
          r.errorCode,
          ErrorCode.NONE,
          `produce after freeing space: ${errorName(r.errorCode)} ${r.message}`,
        );
        assert.equal(r.baseOffset, expectedNext);
        acked.push({ baseOffset: r.baseOffset, values });
        expectedNext += values.length;
      }
      await assertContents(broker.port, topic, acked);
    } finally {
      client.close();
    }

    // 4. Restart: every acknowledged record intact, segment files clean.
    assert.doesNotMatch(broker.output, /unhandled|uncaught/i);
    await broker.restart();
    await assertContents(broker.port, topic, acked);
    assertSegmentsClean(join(dataDir, `${topic}-0`));
    for (const name of readdirSync(join(dataDir, `${topic}-0`)).filter((n) => n.endsWith('.log'))) {
      const buf = readFileSync(join(dataDir, `${topic}-0`, name));
      for (const s of completeBatchOffsets(buf))
        await decodeRecordBatch(buf.subarray(0, s.at + s.size), s.at);
    }
    assert.doesNotMatch(broker.output, /unhandled|uncaught/i);
  } finally {
    await broker?.kill();
    unmount(mount);
  }
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function partitionState(port: number, topic: string): Promise<{ leader: number; isr: number[] }> {
  const c = await WireClient.connect(port);
  try {
    const r = await c.request(ApiKey.Metadata, 12, {
      topics: [{ name: topic, topicId: '00000000000000000000000000000000' }],
      allowAutoTopicCreation: false,
      includeTopicAuthorizedOperations: false,
    });
    const p = r.topics[0]?.partitions[0];
    return { leader: p?.leaderId ?? -1, isr: p ? [...p.isrNodes] : [] };
  } finally {
    c.close();
  }
}

test('a 3-node cluster where the disk of one node fills: no crash, no acknowledged record lost, it catches up once freed', async (t) => {
  const mounted = mountTmpfs(TMPFS_BYTES);
  if (typeof mounted === 'string') {
    console.log(`# skipping: cannot mount a tmpfs here (${mounted})`);
    t.skip(`cannot mount a tmpfs: ${mounted}`);
    return;
  }
  const mount = mounted.dir;
  const nodes: BrokerProcess[] = [];
  try {
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const voters = [1, 2, 3].map((id) => `${id}@127.0.0.1:${ports[2 + id]}`).join(',');
    const dataDir3 = join(mount, 'data');
    mkdirSync(dataDir3);
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await BrokerProcess.start({
          port: ports[i]!,
          dataDir: i === 2 ? dataDir3 : undefined,
          set: [
            `controller.quorum.voters=${voters}`,
            'cluster.id=disk-full',
            'broker.session.timeout.ms=3000',
            'broker.heartbeat.interval.ms=500',
            'replica.lag.time.max.ms=4000',
            'controller.quorum.election.timeout.ms=500',
            `node.id=${i + 1}`,
            `controller.listen=127.0.0.1:${ports[3 + i]}`,
          ],
        }),
      );
    }
    const topic = 'rf3';
    for (let i = 0; ; i++) {
      try {
        await createTopic(
          nodes[0]!.port,
          topic,
          1,
          { 'min.insync.replicas': '2', 'segment.bytes': String(512 * 1024) },
          undefined,
          3,
        );
        break;
      } catch (err) {
        if (i >= 50) throw err;
        await sleep(200);
      }
    }
    let state = await partitionState(nodes[0]!.port, topic);
    for (let i = 0; i < 100 && state.isr.length < 3; i++) {
      await sleep(200);
      state = await partitionState(nodes[0]!.port, topic);
    }
    assert.equal(state.isr.length, 3, 'all three in sync before the disk fills');
    t.diagnostic(`node ${state.leader} leads; node 3's disk fills`);
    const free = statfsSync(mount).bavail * statfsSync(mount).bsize;
    writeFileSync(join(mount, 'filler'), Buffer.alloc(Math.max(0, free - (2 << 20))));

    const acked: Acked[] = [];
    const failures = new Map<string, number>();
    /** acks=all produces through the current leader, until `batches` more are acknowledged or time is up. */
    const produceSome = async (batches: number, ms: number) => {
      const stop = acked.length + batches;
      const until = Date.now() + ms;
      while (acked.length < stop && Date.now() < until) {
        const st = await partitionState(nodes[0]!.port, topic).catch(() => undefined);
        if (!st || st.leader < 1) {
          await sleep(100);
          continue;
        }
        const c = await WireClient.connect(nodes[st.leader - 1]!.port);
        try {
          while (acked.length < stop && Date.now() < until) {
            const values = nextValues();
            const r = await produceOnce(c, topic, values);
            if (r.errorCode !== ErrorCode.NONE) {
              const name = errorName(r.errorCode);
              failures.set(name, (failures.get(name) ?? 0) + 1);
              await sleep(100);
              break;
            }
            acked.push({ baseOffset: r.baseOffset, values });
          }
        } finally {
          c.close();
        }
      }
    };
    // About 4 MiB: node 3 has 2 MiB.
    await produceSome(120, 15_000);
    await sleep(2000);
    t.diagnostic(
      `while full: ${acked.length} acknowledged, failures ${JSON.stringify(Object.fromEntries(failures))}`,
    );
    for (const name of failures.keys()) {
      assert.ok(
        // NOT_LEADER_OR_FOLLOWER: retriable; a replica answers it until its replication state is
        // attached after a leadership change, and leadership may move on a loaded machine.
        [
          'KAFKA_STORAGE_ERROR',
          'NOT_ENOUGH_REPLICAS',
          'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
          'NOT_LEADER_OR_FOLLOWER',
        ].includes(name),
        `a produce failed with ${name}`,
      );
    }
    assert.ok(/ENOSPC/.test(nodes[2]!.output), 'node 3 hit ENOSPC');
    assert.deepEqual(
      nodes.map((n) => n.running),
      [true, true, true],
      `no node died:\n${nodes[2]!.output.slice(-3000)}`,
    );

    rmSync(join(mount, 'filler'));
    state = await partitionState(nodes[0]!.port, topic);
    for (let i = 0; i < 150 && state.isr.length < 3; i++) {
      await sleep(200);
      state = await partitionState(nodes[0]!.port, topic);
    }
    assert.equal(state.isr.length, 3, 'node 3 is back in sync once space is freed');
    await produceSome(30, 15_000);
    assert.ok(acked.length >= 30, 'produces go on');
    await sleep(2000);

    // Node 3's own copy, read from its files: every acknowledged record at its offset.
    const dir = join(dataDir3, `${topic}-0`);
    const got = new Map<number, string>();
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.log'))) {
      const buf = readFileSync(join(dir, name));
      const spans = completeBatchOffsets(buf);
      const last = spans[spans.length - 1];
      const end = last ? last.at + last.size : 0;
      assert.equal(end, buf.length, `node 3 ${name}: bytes after the last whole batch`);
      for (const b of await decodeRecordBatches(buf)) {
        for (const r of b.records) got.set(Number(r.offset), r.value?.toString('latin1') ?? '');
      }
    }
    let missing = 0;
    for (const a of acked)
      a.values.forEach((v, i) => (got.get(a.baseOffset + i) === v ? undefined : missing++));
    assert.equal(missing, 0, 'node 3 holds every acknowledged record');
    for (const n of nodes) assert.doesNotMatch(n.output, /unhandled|uncaught/i);
    assert.deepEqual(
      nodes.map((n) => n.running),
      [true, true, true],
    );
  } finally {
    for (const n of nodes) await n.destroy().catch(() => {});
    unmount(mount);
  }
});

test('a cluster node: a replica that cannot be opened on a full disk opens once space frees; a metadata log that cannot be written stops the node (exit 1)', async (t) => {
  const mounted = mountTmpfs(4 << 20);
  if (typeof mounted === 'string') {
    console.log(`# skipping: cannot mount a tmpfs here (${mounted})`);
    t.skip(`cannot mount a tmpfs: ${mounted}`);
    return;
  }
  const mount = mounted.dir;
  let node: BrokerProcess | undefined;
  const filler = join(mount, 'filler');
  /** Fills the tmpfs to the last byte (writes what fits, then ENOSPC). */
  const fill = () => {
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'pipe' });
    } catch {
      // dd exits 1 on ENOSPC, which is the point.
    }
    assert.equal(statfsSync(mount).bavail, 0, 'the disk is full');
  };
  try {
    const ports = await Promise.all([freePort(), freePort()]);
    const dataDir = join(mount, 'data');
    mkdirSync(dataDir);
    node = await BrokerProcess.start({
      port: ports[0]!,
      dataDir,
      set: [
        `controller.quorum.voters=1@127.0.0.1:${ports[1]}`,
        'node.id=1',
        `controller.listen=127.0.0.1:${ports[1]}`,
        'controller.quorum.election.timeout.ms=500',
      ],
    });
    // Wait until the node serves as a broker (a topic can be created).
    for (let i = 0; ; i++) {
      try {
        await createTopic(node.port, 'before', 1);
        break;
      } catch (e) {
        if (i >= 60) throw e;
        await sleep(250);
      }
    }

    // The disk fills; a new topic is recorded in the metadata log (small appends still fit in a
    // page of the Raft log file) but its replica cannot be created.
    fill();
    await createTopic(node.port, 'during', 2);
    await sleep(1500);
    assert.match(node.output, /during-0: applying its metadata failed \(ENOSPC/);
    const client = await WireClient.connect(node.port);
    try {
      const refused = await produceOnce(client, 'during', ['x']);
      assert.equal(refused.errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER, errorName(refused.errorCode));
      // Space again: the replicas open within the retry interval and take writes.
      rmSync(filler);
      let ok: Awaited<ReturnType<typeof produceOnce>> | undefined;
      for (let i = 0; i < 40; i++) {
        ok = await produceOnce(client, 'during', ['y']);
        if (ok.errorCode === ErrorCode.NONE) break;
        await sleep(250);
      }
      assert.equal(
        ok?.errorCode,
        ErrorCode.NONE,
        `produce after freeing space: ${errorName(ok?.errorCode ?? -1)}`,
      );
      assert.match(node.output, /during-0: its metadata applied after all/);
    } finally {
      client.close();
    }

    // Full again, and topics created until a metadata log append no longer fits: the node must
    // stop (as Kafka does when its metadata log dir fails) rather than serve stale metadata.
    fill();
    const created: string[] = [];
    for (let i = 0; i < 40 && node.running; i++) {
      await createTopic(node.port, `meta-${i}`, 1).then(
        () => created.push(`meta-${i}`),
        () => {},
      );
    }
    for (let i = 0; i < 80 && node.running; i++) await sleep(250);
    assert.equal(node.running, false, 'the node stopped');
    assert.match(node.output, /FATAL: the metadata log under .* cannot be written/);
    assert.equal(await node.stop(), 1, 'exit code 1');
    assert.doesNotMatch(node.output, /unhandled|uncaught/i);

    // Space again: it starts, recovery cuts the torn tail of the metadata log, and every topic it
    // acknowledged is there.
    rmSync(filler);
    await node.restart();
    // A cluster node answers from its metadata image once it has replayed its log and been
    // elected; ask until the topics show.
    const want = ['before', 'during', ...created];
    let names: string[] = [];
    for (let i = 0; i < 60; i++) {
      const seen = await WireClient.connect(node.port);
      try {
        const md = await seen.request(ApiKey.Metadata, 12, {
          topics: null,
          allowAutoTopicCreation: false,
          includeTopicAuthorizedOperations: false,
        });
        names = md.topics.map((x) => x.name ?? '');
      } finally {
        seen.close();
      }
      if (want.every((n) => names.includes(n))) break;
      await sleep(250);
    }
    for (const n of want) assert.ok(names.includes(n), `${n} in ${names.join(',')}`);
  } finally {
    await node?.destroy().catch(() => {});
    unmount(mount);
  }
});
