/**
 * Fetch (key 1), v4-17. Implements KIP-74 (response maxBytes, and at least one batch even when it
 * is larger than the limits, so a consumer can always make progress), KIP-227 (incremental fetch
 * sessions), topic ids (v13+) and long polling: when fewer than minBytes are ready the request
 * waits up to maxWaitMs and is woken by any append to one of its partitions.
 * Consumers never read past the high watermark. Not implemented yet: follower fetching from
 * replicas (replicaId/replicaState, KIP-392 preferred read replica), transactions' aborted lists.
 */

import { EMPTY_BUFFER, type Encodable, ZERO_UUID } from '../../protocol/codec-support.js';
import { ErrorCode } from '../../protocol/errors.js';
import type { FetchResponse, PartitionData } from '../../protocol/generated/fetch-response.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';
import { type FetchSession, type SessionPartition, sessionKey } from '../fetch-sessions.js';
import type { Partition } from '../partition.js';
import { LeaderHints } from './leader-hints.js';
import { replicaFetch } from './replica-fetch.js';

interface Wanted {
  topic: string;
  topicId: string;
  partition: number;
  fetchOffset: number;
  maxBytes: number;
  /** Set when the topic or partition is unknown. */
  errorCode: number;
}

interface Result {
  want: Wanted;
  data: Encodable<PartitionData>;
  bytes: number;
}

/** Reads one partition for a fetch; returns the response entry and the record bytes it carries. */
async function readPartition(
  p: Partition | undefined,
  w: Wanted,
  maxBytes: number,
  minOneBatch: boolean,
): Promise<Result> {
  const base = { partitionIndex: w.partition, abortedTransactions: null, preferredReadReplica: -1 };
  if (!p) {
    return {
      want: w,
      bytes: 0,
      data: {
        ...base,
        errorCode: w.errorCode || ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        highWatermark: -1,
        lastStableOffset: -1,
        logStartOffset: -1,
        records: EMPTY_BUFFER,
      },
    };
  }
  if (!p.isLeader) {
    // A follower replica here: consumers read from the leader (no KIP-392 follower fetching).
    return {
      want: w,
      bytes: 0,
      data: {
        ...base,
        errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
        highWatermark: -1,
        lastStableOffset: -1,
        logStartOffset: -1,
        records: EMPTY_BUFFER,
      },
    };
  }
  const hw = p.highWatermark;
  const offsets = { highWatermark: hw, lastStableOffset: hw, logStartOffset: p.logStartOffset };
  if (w.fetchOffset < p.logStartOffset || w.fetchOffset > p.logEndOffset) {
    return {
      want: w,
      bytes: 0,
      data: { ...base, ...offsets, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, records: EMPTY_BUFFER },
    };
  }
  if (w.fetchOffset >= hw || (maxBytes <= 0 && !minOneBatch)) {
    return { want: w, bytes: 0, data: { ...base, ...offsets, errorCode: 0, records: EMPTY_BUFFER } };
  }
  try {
    const r = await p.log.read(w.fetchOffset, Math.max(0, maxBytes), { minOneBatch, maxOffset: hw });
    return {
      want: w,
      bytes: r.records.length,
      data: { ...base, ...offsets, errorCode: 0, records: r.records },
    };
  } catch (err) {
    if ((err as { code?: string }).code === 'OFFSET_OUT_OF_RANGE') {
      return {
        want: w,
        bytes: 0,
        data: { ...base, ...offsets, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, records: EMPTY_BUFFER },
      };
    }
    throw err;
  }
}

export const fetchHandler = defineHandler<Broker, ApiKey.Fetch>(
  ApiKey.Fetch,
  { min: 4, max: 17 },
  async (ctx, req) => {
    const broker = ctx.broker;
    const replicaId = ctx.apiVersion >= 15 ? req.replicaState.replicaId : req.replicaId;
    if (replicaId >= 0) {
      if (!broker.cluster)
        return { throttleTimeMs: 0, errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, sessionId: 0, responses: [] };
      return replicaFetch(broker, req, replicaId, ctx.apiVersion);
    }
    const now = Date.now();
    const useIds = ctx.apiVersion >= 13;

    // Resolve what the request names.
    const requested: Wanted[] = [];
    for (const t of req.topics) {
      const topic = useIds ? broker.topics.getById(t.topicId) : broker.topics.get(t.topic);
      for (const p of t.partitions) {
        requested.push({
          topic: topic?.meta.name ?? t.topic,
          topicId: topic?.meta.topicId ?? t.topicId ?? ZERO_UUID,
          partition: p.partition,
          fetchOffset: p.fetchOffset,
          maxBytes: p.partitionMaxBytes,
          errorCode: topic
            ? p.partition < topic.partitions.length
              ? 0
              : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            : useIds
              ? ErrorCode.UNKNOWN_TOPIC_ID
              : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        });
      }
    }

    // KIP-227 session handling.
    let session: FetchSession | null = null;
    let incremental = false;
    const sessions = broker.fetchSessions;
    if (ctx.apiVersion >= 7) {
      if (req.sessionId === 0) {
        if (req.sessionEpoch === 0) session = sessions.create(now);
      } else if (req.sessionEpoch === -1) {
        sessions.remove(req.sessionId);
      } else if (req.sessionEpoch === 0) {
        sessions.remove(req.sessionId);
        session = sessions.create(now);
      } else {
        const found = sessions.lookup(req.sessionId, req.sessionEpoch, now);
        if (typeof found === 'number') {
          return { throttleTimeMs: 0, errorCode: found, sessionId: 0, responses: [] };
        }
        session = found;
        incremental = true;
      }
    }

    let wanted: Wanted[] = requested;
    if (session) {
      if (!incremental) session.partitions.clear();
      for (const f of req.forgottenTopicsData ?? []) {
        const name = useIds ? broker.topics.getById(f.topicId)?.meta.name : f.topic;
        if (name === undefined) continue;
        for (const p of f.partitions) session.partitions.delete(sessionKey(name, p));
      }
      for (const w of requested) {
        const key = sessionKey(w.topic, w.partition);
        const prev = session.partitions.get(key);
        const sp: SessionPartition = {
          topic: w.topic,
          topicId: w.topicId,
          partition: w.partition,
          fetchOffset: w.fetchOffset,
          maxBytes: w.maxBytes,
          lastHighWatermark: prev?.lastHighWatermark ?? -1,
          lastLogStartOffset: prev?.lastLogStartOffset ?? -1,
        };
        session.partitions.set(key, sp);
      }
      if (incremental) {
        wanted = [...session.partitions.values()].map((sp) => {
          const topic = broker.topics.get(sp.topic);
          return {
            topic: sp.topic,
            topicId: sp.topicId,
            partition: sp.partition,
            fetchOffset: sp.fetchOffset,
            maxBytes: sp.maxBytes,
            errorCode:
              topic && sp.partition < topic.partitions.length
                ? 0
                : useIds
                  ? ErrorCode.UNKNOWN_TOPIC_ID
                  : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          };
        });
      }
    }

    const attempt = async (): Promise<{ results: Result[]; total: number; errors: boolean }> => {
      let remaining = req.maxBytes;
      let total = 0;
      let errors = false;
      const results: Result[] = [];
      for (const w of wanted) {
        const p = w.errorCode ? undefined : broker.topics.partition(w.topic, w.partition);
        // In a cluster a partition this broker holds no replica of is led elsewhere.
        if (!p && !w.errorCode && broker.cluster) w.errorCode = ErrorCode.NOT_LEADER_OR_FOLLOWER;
        const limit = Math.min(w.maxBytes, remaining);
        const r = await readPartition(p, w, limit, total === 0);
        if (r.data.errorCode) errors = true;
        total += r.bytes;
        remaining -= r.bytes;
        results.push(r);
      }
      return { results, total, errors };
    };

    let outcome = await attempt();
    const deadline = now + req.maxWaitMs;
    while (
      outcome.total < Math.max(1, req.minBytes) &&
      !outcome.errors &&
      Date.now() < deadline &&
      wanted.length > 0
    ) {
      const waitMs = deadline - Date.now();
      await new Promise<void>((resolve) => {
        const cancels: (() => void)[] = [];
        const done = () => {
          clearTimeout(timer);
          for (const c of cancels) c();
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        for (const w of wanted) {
          const p = w.errorCode ? undefined : broker.topics.partition(w.topic, w.partition);
          if (p) cancels.push(p.onAppend(done));
        }
      });
      outcome = await attempt();
    }

    // Build the response; an incremental one lists only partitions with news.
    const byTopic = new Map<
      string,
      { topic: string; topicId: string; partitions: Encodable<PartitionData>[] }
    >();
    const hints = new LeaderHints(broker);
    for (const r of outcome.results) {
      if (session) {
        const sp = session.partitions.get(sessionKey(r.want.topic, r.want.partition));
        const hw = r.data.highWatermark ?? -1;
        const lso = r.data.logStartOffset ?? -1;
        const news =
          !incremental ||
          r.bytes > 0 ||
          r.data.errorCode !== 0 ||
          !sp ||
          sp.lastHighWatermark !== hw ||
          sp.lastLogStartOffset !== lso;
        if (sp) {
          sp.lastHighWatermark = hw;
          sp.lastLogStartOffset = lso;
        }
        if (!news) continue;
      }
      const key = r.want.topicId + r.want.topic;
      let t = byTopic.get(key);
      if (!t) {
        t = { topic: r.want.topic, topicId: r.want.topicId, partitions: [] };
        byTopic.set(key, t);
      }
      const leader = hints.leaderFor(r.want.topic, r.want.partition, r.data.errorCode);
      if (leader) r.data.currentLeader = leader;
      t.partitions.push(r.data);
    }
    if (session) session.epoch = session.epoch >= 0x7fffffff ? 1 : session.epoch + 1;
    const response: Encodable<FetchResponse> = {
      throttleTimeMs: 0,
      errorCode: 0,
      sessionId: session?.id ?? 0,
      responses: [...byTopic.values()],
      nodeEndpoints: hints.endpoints(),
    };
    return response;
  },
);
