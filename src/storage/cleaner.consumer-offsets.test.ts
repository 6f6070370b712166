/**
 * `__consumer_offsets` is compacted, and the group coordinator still loads the right state from
 * the compacted log.
 *
 * Goal: many OffsetCommits for one group/partition, then the broker's retention/compaction pass,
 * then a restart: the log has shrunk to (about) one offset record per key, and OffsetFetch after
 * the restart answers the latest committed offset. Method: an in-process broker on a temporary
 * data directory, requests through its dispatcher (no sockets); `__consumer_offsets` gets small
 * segments so the commits span many sealed segments.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Broker } from '../broker/broker.js';
import { defaultBrokerConfig } from '../broker/config.js';
import { partitionForGroup } from '../group/coordinator.js';
import { CONSUMER_OFFSETS_TOPIC } from '../group/group-log.js';
import type { Encodable } from '../protocol/codec-support.js';
import { ApiKey, apiCodecs } from '../protocol/generated/index.js';
import { encodeRequestHeader } from '../protocol/generated/request-header.js';
import { Reader, Writer } from '../protocol/primitives.js';
import { decodeRecordBatches } from '../protocol/records/record-batch.js';

type Codecs = typeof apiCodecs;
type Req<K extends keyof Codecs> = ReturnType<Codecs[K]['decodeRequest']>;
type Res<K extends keyof Codecs> = ReturnType<Codecs[K]['decodeResponse']>;

const quiet = { info() {}, warn() {}, error() {} };
const dataDir = mkdtempSync(join(tmpdir(), 'sluice-compact-offsets-'));
const brokers: Broker[] = [];
after(async () => {
  for (const b of brokers) await b.stop().catch(() => {});
  rmSync(dataDir, { recursive: true, force: true });
});

async function startBroker(): Promise<Broker> {
  const cfg = defaultBrokerConfig();
  cfg.dataDir = dataDir;
  cfg.port = 0;
  cfg.metricsPort = -1;
  cfg.groupInitialRebalanceDelayMs = 0;
  cfg.offsetsTopicNumPartitions = 3;
  const b = new Broker(cfg, quiet);
  await b.start();
  brokers.push(b);
  return b;
}

let correlation = 1;
async function call<K extends keyof Codecs>(
  b: Broker,
  apiKey: K,
  version: number,
  body: Encodable<Req<K>>,
): Promise<Res<K>> {
  const codec = apiCodecs[apiKey];
  const flexible = codec.flexibleMin >= 0 && version >= codec.flexibleMin;
  const w = new Writer(256);
  encodeRequestHeader(
    w,
    { requestApiKey: apiKey, requestApiVersion: version, correlationId: correlation++, clientId: 'tester' },
    flexible ? 2 : 1,
  );
  (codec.encodeRequest as (w: Writer, v: unknown, version: number) => void)(w, body, version);
  const out = await b.dispatcher.handleFrame(w.toBuffer(), {
    id: 1,
    remoteAddress: '127.0.0.1',
    remotePort: 5555,
  });
  assert.ok(out);
  const r = new Reader(Buffer.from(out));
  r.int32();
  if (flexible) r.taggedFields();
  return codec.decodeResponse(r, version) as Res<K>;
}

async function commit(b: Broker, partitionIndex: number, offset: number): Promise<void> {
  const c = await call(b, ApiKey.OffsetCommit, 8, {
    groupId: 'g',
    generationIdOrMemberEpoch: -1,
    memberId: '',
    topics: [
      { name: 't', partitions: [{ partitionIndex, committedOffset: offset, committedMetadata: null }] },
    ],
  });
  assert.equal(c.topics[0]!.partitions[0]!.errorCode, 0);
}

async function recordCount(b: Broker, partition: number): Promise<number> {
  const log = b.topics.partition(CONSUMER_OFFSETS_TOPIC, partition)!.log;
  let n = 0;
  let next = log.logStartOffset;
  while (next < log.logEndOffset) {
    const r = await log.read(next, 1 << 20);
    for (const batch of await decodeRecordBatches(r.records)) n += batch.records.length;
    next = r.nextOffset;
  }
  return n;
}

test('__consumer_offsets is compacted and the latest committed offsets load after a restart', async () => {
  let b = await startBroker();
  await b.topics.create('t', 2);
  await commit(b, 0, 0); // creates __consumer_offsets
  const meta = b.topics.get(CONSUMER_OFFSETS_TOPIC)!.meta;
  assert.equal(meta.configs['cleanup.policy'], 'compact');
  await b.topics.setConfigs(CONSUMER_OFFSETS_TOPIC, { ...meta.configs, 'segment.bytes': '1024' });
  for (let i = 1; i <= 300; i++) await commit(b, i % 2, i);
  const gp = partitionForGroup('g', 3);
  const log = b.topics.partition(CONSUMER_OFFSETS_TOPIC, gp)!.log;
  const leo = log.logEndOffset;
  const sizeBefore = log.sizeBytes;
  const segmentsBefore = log.segmentCount;
  assert.ok(segmentsBefore > 10, `commits span many segments (${segmentsBefore})`);
  assert.equal(await recordCount(b, gp), 301);

  // The broker's periodic pass: retention (not for compact-only topics) and compaction.
  assert.equal(await b.topics.applyRetention(), 0);
  assert.equal(log.logEndOffset, leo, 'offsets never change');
  assert.ok(log.sizeBytes < sizeBefore / 3, `compacted: ${sizeBefore} -> ${log.sizeBytes} bytes`);
  // Two keys (one per partition of t) survive in the cleaned part, plus whatever is in the active segment.
  const left = await recordCount(b, gp);
  assert.ok(left < 40, `records left: ${left}`);

  await b.stop();
  b = await startBroker();
  const f = await call(b, ApiKey.OffsetFetch, 6, { groupId: 'g', topics: null });
  assert.deepEqual(
    f.topics[0]!.partitions.map((x) => [x.partitionIndex, x.committedOffset]).sort((x, y) => x[0]! - y[0]!),
    [
      [0, 300],
      [1, 299],
    ],
  );
  // The compaction and its checkpoint survived the restart too.
  const log2 = b.topics.partition(CONSUMER_OFFSETS_TOPIC, gp)!.log;
  assert.equal(log2.logEndOffset, leo);
  assert.equal(await recordCount(b, gp), left);
  assert.notEqual((await log2.clean()).cleaned, true);
});
