/**
 * Fetch from a follower replica (replicaId >= 0; v15+ in replicaState): the leader's side of
 * partition replication. Each partition goes to its ReplicatedPartition, which records the
 * follower's log end offset (ISR and high watermark bookkeeping), checks lastFetchedEpoch against
 * the leader-epoch cache (divergingEpoch, KIP-320) and says what to read. When no partition has
 * data the request waits up to maxWaitMs, woken by any append to one of them.
 */

import type { Encodable } from '../../protocol/codec-support.js';
import { EMPTY_BUFFER, ZERO_UUID } from '../../protocol/codec-support.js';
import { ErrorCode } from '../../protocol/errors.js';
import type { FetchRequest } from '../../protocol/generated/fetch-request.js';
import type { FetchResponse, PartitionData } from '../../protocol/generated/fetch-response.js';
import type { Broker } from '../broker.js';

export async function replicaFetch(
  broker: Broker,
  req: FetchRequest,
  replicaId: number,
  apiVersion: number,
): Promise<Encodable<FetchResponse>> {
  const cluster = broker.cluster!;
  const useIds = apiVersion >= 13;
  const wanted = req.topics.flatMap((t) => {
    const name = useIds ? (broker.topics.getById(t.topicId)?.meta.name ?? '') : t.topic;
    return t.partitions.map((p) => ({ topic: name, topicId: t.topicId, p }));
  });
  const deadline = Date.now() + Math.min(req.maxWaitMs, 30_000);
  for (;;) {
    let bytes = 0;
    const results: { topic: string; topicId: string; data: Encodable<PartitionData> }[] = [];
    for (const w of wanted) {
      const base = {
        partitionIndex: w.p.partition,
        abortedTransactions: null,
        preferredReadReplica: -1,
        lastStableOffset: -1,
      };
      const rp = cluster.replicas.get(w.topic, w.p.partition);
      if (!rp) {
        results.push({
          topic: w.topic,
          topicId: w.topicId,
          data: {
            ...base,
            errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
            highWatermark: -1,
            logStartOffset: -1,
            records: EMPTY_BUFFER,
          },
        });
        continue;
      }
      const r = await rp.handleReplicaFetch(
        {
          kind: 'fetch',
          correlationId: 0,
          replicaId,
          currentLeaderEpoch: w.p.currentLeaderEpoch,
          fetchOffset: w.p.fetchOffset,
          lastFetchedEpoch: w.p.lastFetchedEpoch,
          logStartOffset: w.p.logStartOffset,
          maxBytes: w.p.partitionMaxBytes,
        },
        Math.max(0, req.maxBytes - bytes),
      );
      bytes += r.records.length;
      results.push({
        topic: w.topic,
        topicId: w.topicId,
        data: {
          ...base,
          errorCode: r.errorCode,
          highWatermark: r.highWatermark,
          lastStableOffset: r.highWatermark,
          logStartOffset: r.logStartOffset,
          divergingEpoch: r.divergingEpoch
            ? { epoch: r.divergingEpoch.epoch, endOffset: r.divergingEpoch.endOffset }
            : { epoch: -1, endOffset: -1 },
          currentLeader: { leaderId: rp.leaderId, leaderEpoch: rp.leaderEpoch },
          records: r.records,
        },
      });
    }
    const news =
      bytes > 0 || results.some((r) => r.data.errorCode !== 0 || (r.data.divergingEpoch?.epoch ?? -1) >= 0);
    const waitMs = deadline - Date.now();
    if (news || waitMs <= 0) return respond(results);
    await new Promise<void>((resolve) => {
      const cancels: (() => void)[] = [];
      const done = () => {
        clearTimeout(timer);
        for (const c of cancels) c();
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      for (const w of wanted) {
        const p = broker.topics.partition(w.topic, w.p.partition);
        if (p) cancels.push(p.onAppend(done));
      }
    });
  }
}

function respond(
  results: { topic: string; topicId: string; data: Encodable<PartitionData> }[],
): Encodable<FetchResponse> {
  const byTopic = new Map<
    string,
    { topic: string; topicId: string; partitions: Encodable<PartitionData>[] }
  >();
  for (const r of results) {
    let t = byTopic.get(r.topic);
    if (!t) {
      t = { topic: r.topic, topicId: r.topicId || ZERO_UUID, partitions: [] };
      byTopic.set(r.topic, t);
    }
    t.partitions.push(r.data);
  }
  return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: [...byTopic.values()] };
}
