/**
 * PartitionReplica, step by step: the leader's ISR and high-watermark rules, acks=all answers,
 * Fetch validation (KIP-320), and the divergence scenarios that leader epochs exist for — KIP-101's
 * two (a restarted replica with an unconfirmed tail; two replicas with different uncommitted
 * records at one offset after a power loss) and KIP-279's fast leader change — each run with both
 * truncation paths (OffsetForLeaderEpoch first, and Fetch divergingEpoch alone).
 *
 * Method: replicas exchange requests and responses directly (no network), fsyncs complete when the
 * test says, and the controller is the test, handing out partition states.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../protocol/errors.js';
import { decodeRecords, valuesBatch } from '../storage/test-batches.js';
import type { BrokerId, PartitionState } from './messages.js';
import {
  DEFAULT_REPLICA_CONFIG,
  PartitionReplica,
  type ReplicaConfig,
  type ReplicaOutput,
} from './partition-replica.js';
import { MemoryReplicaLog } from './replica-log.js';

const REPLICAS = [1, 2, 3];
let partitionEpochSeq = 0;

function state(
  leaderId: BrokerId,
  leaderEpoch: number,
  isr: BrokerId[],
  replicas = REPLICAS,
): PartitionState {
  return { leaderId, leaderEpoch, partitionEpoch: ++partitionEpochSeq, isr, replicas };
}

function replica(
  id: BrokerId,
  cfg: Partial<ReplicaConfig> = {},
  log = new MemoryReplicaLog(),
  hw = 0,
): PartitionReplica {
  return PartitionReplica.recover(
    { ...DEFAULT_REPLICA_CONFIG, minInsyncReplicas: 2, brokerId: id, ...cfg },
    log,
    hw,
  );
}

function memLog(r: PartitionReplica): MemoryReplicaLog {
  return r.log as MemoryReplicaLog;
}

function flush(r: PartitionReplica): void {
  memLog(r).flush();
  r.onFlushed();
}

/** Restart: the log keeps what was flushed; a new replica recovers from it. */
function restart(r: PartitionReplica, cfg: Partial<ReplicaConfig> = {}): PartitionReplica {
  memLog(r).crash(0);
  return replica(r.brokerId, cfg, memLog(r), r.highWatermark);
}

/** One request/response round trip from follower to leader, then the follower's fsync. */
function roundTrip(follower: PartitionReplica, leader: PartitionReplica, nowMs = 0): boolean {
  const req = follower.pollRequest(nowMs);
  if (req === undefined) return false;
  const resp = req.kind === 'fetch' ? leader.handleFetch(req, nowMs) : leader.handleOffsetForLeaderEpoch(req);
  follower.handleResponse(resp, nowMs);
  flush(follower);
  return true;
}

function sync(follower: PartitionReplica, leader: PartitionReplica, rounds = 8, nowMs = 0): void {
  for (let i = 0; i < rounds; i++) roundTrip(follower, leader, nowMs);
}

function produce(leader: PartitionReplica, values: string[], acks: -1 | 1 = -1, id = 0) {
  return leader.appendAsLeader(id, valuesBatch(values), acks, 0, 30_000);
}

/** (value, epoch) of every record in the log, in offset order. */
function contents(r: PartitionReplica): string[] {
  const log = memLog(r);
  const out: string[] = [];
  for (const b of log.batchList) {
    for (const rec of decodeRecords(b.bytes))
      out.push(`${rec.offset}:${rec.value?.toString()}@${b.leaderEpoch}`);
  }
  return out;
}

function completions(r: PartitionReplica) {
  return r
    .drainOutputs()
    .filter(
      (o): o is Extract<ReplicaOutput, { type: 'produce-completed' }> => o.type === 'produce-completed',
    );
}

function alterRequests(r: PartitionReplica) {
  return r
    .drainOutputs()
    .filter((o): o is Extract<ReplicaOutput, { type: 'alter-partition' }> => o.type === 'alter-partition')
    .map((o) => o.request);
}

describe('leader: high watermark and acks=all', () => {
  test('HW is the minimum flushed offset over the ISR; acks=all completes at the HW', () => {
    const a = replica(1);
    const b = replica(2);
    const s = state(1, 0, [1, 2], [1, 2]);
    a.applyPartitionState(s, 0);
    b.applyPartitionState(s, 0);
    const res = produce(a, ['x', 'y'], -1, 7);
    assert.deepEqual(
      [res.errorCode, res.baseOffset, res.lastOffset, res.pending],
      [ErrorCode.NONE, 0, 1, true],
    );
    assert.equal(a.highWatermark, 0);
    roundTrip(b, a); // b appends and fsyncs, but has not reported yet
    assert.equal(a.highWatermark, 0, 'the leader has not fsynced');
    flush(a);
    assert.equal(a.highWatermark, 0, 'the follower has not reported its new offset');
    roundTrip(b, a);
    assert.equal(a.highWatermark, 2);
    assert.equal(b.highWatermark, 2);
    assert.deepEqual(
      completions(a).map((c) => [c.produceId, c.errorCode, c.baseOffset]),
      [[7, ErrorCode.NONE, 0]],
    );
  });

  test('a follower reports an offset only once it is flushed', () => {
    const a = replica(1);
    const b = replica(2);
    const s = state(1, 0, [1, 2], [1, 2]);
    a.applyPartitionState(s, 0);
    b.applyPartitionState(s, 0);
    produce(a, ['x']);
    flush(a);
    const req = b.pollRequest(0)!;
    b.handleResponse(a.handleFetch(req as never, 0), 0);
    assert.equal(memLog(b).logEndOffset, 1);
    assert.equal(b.pollRequest(0), undefined, 'no fetch while the append is not durable');
    flush(b);
    assert.equal((b.pollRequest(0) as { fetchOffset: number }).fetchOffset, 1);
  });

  test('NOT_ENOUGH_REPLICAS before the append, NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank while waiting', () => {
    const a = replica(1, { replicaLagTimeMaxMs: 100 });
    a.applyPartitionState(state(1, 0, [1], [1, 2]), 0);
    assert.equal(produce(a, ['x']).errorCode, ErrorCode.NOT_ENOUGH_REPLICAS);
    assert.equal(produce(a, ['x'], 1).errorCode, ErrorCode.NONE, 'acks=1 does not need the ISR');

    const l = replica(1, { replicaLagTimeMaxMs: 100 });
    const f = replica(2);
    l.applyPartitionState(state(1, 0, [1, 2], [1, 2]), 0);
    const res = produce(l, ['y'], -1, 3);
    assert.equal(res.pending, true);
    flush(l);
    l.tick(101); // follower 2 never fetched: propose to drop it
    const [req] = alterRequests(l);
    assert.deepEqual(req?.newIsr, [1]);
    assert.equal(l.highWatermark, 0, 'a proposed shrink takes no effect until confirmed');
    l.applyPartitionState(
      { leaderId: 1, leaderEpoch: 0, partitionEpoch: req!.partitionEpoch + 1, isr: [1], replicas: [1, 2] },
      101,
    );
    assert.equal(l.highWatermark, 1);
    assert.deepEqual(
      completions(l).map((c) => c.errorCode),
      [ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND],
    );
    void f;
  });

  test('a produce waiting on a leader that loses leadership fails with NOT_LEADER_OR_FOLLOWER', () => {
    const a = replica(1);
    a.applyPartitionState(state(1, 0, [1, 2], [1, 2]), 0);
    produce(a, ['x'], -1, 9);
    a.applyPartitionState(state(2, 1, [1, 2], [1, 2]), 0);
    assert.deepEqual(
      completions(a).map((c) => [c.produceId, c.errorCode]),
      [[9, ErrorCode.NOT_LEADER_OR_FOLLOWER]],
    );
  });
});

describe('leader: ISR changes through the controller', () => {
  test('a lagging follower is proposed out after replica.lag.time.max.ms, and back in once it reaches the HW', () => {
    const a = replica(1, { replicaLagTimeMaxMs: 1000 });
    const b = replica(2);
    const c = replica(3);
    const s = state(1, 0, [1, 2, 3]);
    for (const r of [a, b, c]) r.applyPartitionState(s, 0);
    produce(a, ['x'], 1);
    flush(a);
    sync(b, a, 3, 500);
    a.tick(900);
    assert.deepEqual(alterRequests(a), []);
    sync(b, a, 1, 1200); // b stays caught up; c never fetched
    a.tick(1200);
    const [shrink] = alterRequests(a);
    assert.deepEqual(shrink?.newIsr, [1, 2]);
    // The HW still counts c until the controller confirms.
    assert.equal(a.highWatermark, 0);
    assert.deepEqual(a.maximalIsr, [1, 2, 3]);
    a.onAlterPartitionResponse(
      {
        errorCode: ErrorCode.NONE,
        requestPartitionEpoch: shrink!.partitionEpoch,
        state: { ...s, isr: [1, 2], partitionEpoch: shrink!.partitionEpoch + 1 },
      },
      1200,
    );
    assert.deepEqual(a.isr, [1, 2]);
    assert.equal(a.highWatermark, 1);
    // c catches up to the HW: the leader proposes it back, and counts it for the HW meanwhile.
    sync(c, a, 3, 1300);
    const [expand] = alterRequests(a);
    assert.deepEqual(expand?.newIsr, [1, 2, 3]);
    assert.deepEqual(a.maximalIsr, [1, 2, 3]);
  });

  test('a stale-version answer keeps the proposal counted until a newer partition state arrives', () => {
    const a = replica(1, { replicaLagTimeMaxMs: 10 });
    const s = state(1, 0, [1, 2, 3]);
    a.applyPartitionState(s, 0);
    a.tick(20);
    const [req] = alterRequests(a);
    a.onAlterPartitionResponse(
      {
        errorCode: ErrorCode.INVALID_UPDATE_VERSION,
        requestPartitionEpoch: req!.partitionEpoch,
        state: undefined,
      },
      20,
    );
    assert.equal(a.hasOutstandingAlterPartition, true);
    a.tick(10_000);
    assert.deepEqual(alterRequests(a), [], 'no resend and no new proposal while the outcome is unknown');
    a.applyPartitionState({ ...s, isr: [1, 3], partitionEpoch: req!.partitionEpoch + 1 }, 10_000);
    assert.equal(a.hasOutstandingAlterPartition, false);
    assert.deepEqual(a.isr, [1, 3]);
  });
});

describe('leader: Fetch validation (KIP-320)', () => {
  test('FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, and divergingEpoch for a log that is not a prefix', () => {
    const a = replica(1);
    a.applyPartitionState(state(1, 0, [1, 2], [1, 2]), 0);
    produce(a, ['a', 'b'], 1);
    a.applyPartitionState(state(1, 2, [1, 2], [1, 2]), 0); // re-elected: epoch 2 starts at 2
    produce(a, ['c'], 1);
    const fetch = {
      kind: 'fetch' as const,
      correlationId: 1,
      replicaId: 2,
      logStartOffset: 0,
      maxBytes: 1 << 20,
    };
    assert.equal(
      a.handleFetch({ ...fetch, currentLeaderEpoch: 1, fetchOffset: 0, lastFetchedEpoch: -1 }, 0).errorCode,
      ErrorCode.FENCED_LEADER_EPOCH,
    );
    assert.equal(
      a.handleFetch({ ...fetch, currentLeaderEpoch: 3, fetchOffset: 0, lastFetchedEpoch: -1 }, 0).errorCode,
      ErrorCode.UNKNOWN_LEADER_EPOCH,
    );
    // Follower has epoch 0 up to offset 3, but epoch 0 ends at 2 on the leader.
    const d = a.handleFetch({ ...fetch, currentLeaderEpoch: 2, fetchOffset: 3, lastFetchedEpoch: 0 }, 0);
    assert.deepEqual(d.divergingEpoch, { epoch: 0, endOffset: 2 });
    assert.equal(d.records.length, 0);
    // Follower claims epoch 1, which the leader never had: the answer names epoch 0 (KIP-279).
    const e = a.handleFetch({ ...fetch, currentLeaderEpoch: 2, fetchOffset: 2, lastFetchedEpoch: 1 }, 0);
    assert.deepEqual(e.divergingEpoch, { epoch: 0, endOffset: 2 });
    // A consistent follower gets records and no divergingEpoch.
    const ok = a.handleFetch({ ...fetch, currentLeaderEpoch: 2, fetchOffset: 2, lastFetchedEpoch: 0 }, 0);
    assert.equal(ok.divergingEpoch, undefined);
    assert.deepEqual(
      decodeRecords(ok.records).map((r) => r.value?.toString()),
      ['c'],
    );
  });
});

for (const truncation of ['offset-for-leader-epoch', 'fetch-diverging-epoch'] as const) {
  const cfg = { truncation };
  describe(`divergence scenarios (${truncation})`, () => {
    test('KIP-101 scenario 1: a restarted follower with a stale HW keeps its tail and, as leader, loses nothing', () => {
      let a = replica(1, cfg);
      let b = replica(2, cfg);
      const s0 = state(1, 0, [1, 2], [1, 2]);
      a.applyPartitionState(s0, 0);
      b.applyPartitionState(s0, 0);
      produce(a, ['m1'], -1, 1);
      produce(a, ['m2'], -1, 2);
      flush(a);
      roundTrip(b, a); // b gets m1, m2
      roundTrip(b, a); // reports offset 2: HW 2 on the leader, both acknowledged
      assert.equal(a.highWatermark, 2);
      assert.equal(completions(a).length, 2);
      assert.equal(b.highWatermark, 2);
      // b restarts with a stale HW checkpoint of 1. Pre-KIP-101 it truncated to it here.
      b = replica(2, cfg, memLog(b), 1);
      assert.equal(memLog(b).logEndOffset, 2);
      // a dies; b is elected (it is in the ISR) and leads epoch 1.
      a = restart(a, cfg);
      const s1 = state(2, 1, [2], [1, 2]);
      b.applyPartitionState(s1, 0);
      a.applyPartitionState(s1, 0);
      sync(a, b);
      assert.deepEqual(contents(b), ['0:m1@0', '1:m2@0']);
      assert.deepEqual(contents(a), contents(b));
    });

    test('KIP-101 scenario 2: different uncommitted records at one offset after a power loss are reconciled by epoch', () => {
      let a = replica(1, cfg);
      let b = replica(2, cfg);
      const s0 = state(1, 0, [1, 2], [1, 2]);
      a.applyPartitionState(s0, 0);
      b.applyPartitionState(s0, 0);
      produce(a, ['m1']);
      flush(a);
      sync(b, a, 2);
      produce(a, ['m2'], 1); // offset 1, epoch 0, only on a
      flush(a);
      // Power loss on both; b comes back first and leads epoch 1, writing m3 at offset 1.
      a = restart(a, cfg);
      b = restart(b, cfg);
      const s1 = state(2, 1, [2], [1, 2]);
      b.applyPartitionState(s1, 0);
      produce(b, ['m3'], 1);
      flush(b);
      a.applyPartitionState(s1, 0);
      sync(a, b);
      assert.deepEqual(contents(b), ['0:m1@0', '1:m3@1']);
      assert.deepEqual(
        contents(a),
        contents(b),
        'a dropped m2 (epoch 0 ends at 1 on the leader) and took m3',
      );
    });

    test('KIP-279: after a fast leader change the follower truncates to an epoch both have, then converges', () => {
      let a = replica(1, cfg);
      let b = replica(2, cfg);
      const s1 = state(1, 1, [1, 2], [1, 2]);
      a.applyPartitionState(s1, 0);
      b.applyPartitionState(s1, 0);
      produce(a, ['m0']);
      flush(a);
      sync(b, a, 2);
      produce(a, ['a1'], 1); // offset 1, epoch 1, only on a
      flush(a);
      // Leadership moves to b (epoch 2); b writes b1 at offset 1 that never reaches a.
      const s2 = state(2, 2, [1, 2], [1, 2]);
      b.applyPartitionState(s2, 0);
      produce(b, ['b1'], 1);
      flush(b);
      // ... and quickly back to a (epoch 3) before a fetched anything in epoch 2.
      a = restart(a, cfg);
      b = restart(b, cfg);
      const s3 = state(1, 3, [1], [1, 2]);
      a.applyPartitionState(s3, 0);
      produce(a, ['a2'], 1);
      flush(a);
      b.applyPartitionState(s3, 0);
      // Pre-KIP-279, a would answer OffsetForLeaderEpoch(2) with 2 (where epoch 3 starts) and b would
      // keep b1 at offset 1 beside a's a1: divergence. Now a answers (epoch 1, end 2), b truncates
      // to the end of its own epoch 1 (offset 1), and fetches a1 and a2.
      const direct = b.truncationFor(1, 2);
      assert.deepEqual(direct, { offset: 1, complete: true });
      sync(b, a);
      assert.deepEqual(contents(a), ['0:m0@1', '1:a1@1', '2:a2@3']);
      assert.deepEqual(contents(b), contents(a));
      assert.deepEqual(b.epochCache.list(), a.epochCache.list());
    });

    test('a follower never truncates below its HW when the leader has everything below it', () => {
      const a = replica(1, cfg);
      const b = replica(2, cfg);
      const s0 = state(1, 0, [1, 2], [1, 2]);
      a.applyPartitionState(s0, 0);
      b.applyPartitionState(s0, 0);
      for (let i = 0; i < 5; i++) produce(a, [`v${i}`], 1);
      flush(a);
      sync(b, a, 4);
      assert.equal(b.highWatermark, 5);
      // b leads epoch 1 briefly and writes nothing; a leads epoch 2.
      b.applyPartitionState(state(2, 1, [1, 2], [1, 2]), 0);
      const s2 = state(1, 2, [1, 2], [1, 2]);
      a.applyPartitionState(s2, 0);
      b.applyPartitionState(s2, 0);
      sync(b, a);
      assert.equal(memLog(b).logEndOffset, 5);
      assert.equal(memLog(b).truncationsCount, 0);
      assert.deepEqual(contents(b), contents(a));
    });
  });
}
