/**
 * Produce (key 0), advertised v0-11; v3+ served (record batch v2 only), v0-2 answered
 * UNSUPPORTED_VERSION per partition, as Kafka 4 does.
 *
 * Per partition: validate and append (Partition.appendBatches), waiting for fsync when acks=-1.
 * acks=0 gets no response at all. Unknown topics are auto-created when allowed. Partitions of one
 * request are written concurrently; each answers with its own error code.
 * Transactional produce (KIP-98 transactions) is not supported yet; such requests are answered
 * with UNSUPPORTED_VERSION and a message saying so.
 */

import type { Encodable } from '../../protocol/codec-support.js';
import { ErrorCode, KafkaError } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { PartitionProduceResponse } from '../../protocol/generated/produce-response.js';
import type { Broker } from '../broker.js';
import { NO_RESPONSE, defineHandler } from '../dispatcher.js';
import type { Topic } from '../topics.js';
import { LeaderHints } from './leader-hints.js';

export const produceHandler = defineHandler<Broker, ApiKey.Produce>(
  ApiKey.Produce,
  { min: 0, max: 11 },
  async (ctx, req) => {
    const broker = ctx.broker;
    const acks = req.acks;
    const unsupported = ctx.apiVersion < 3 || req.transactionalId !== null;
    const badAcks = acks !== 0 && acks !== 1 && acks !== -1;
    const responses = await Promise.all(
      req.topicData.map(async (td) => {
        let topic = broker.topics.get(td.name);
        if (!topic && !unsupported && !badAcks) {
          try {
            if (await broker.topicAdmin.autoCreate(td.name)) topic = await localTopic(broker, td.name);
          } catch (err) {
            broker.log.warn(`auto-creating ${td.name}: ${(err as Error).message}`);
          }
        }
        const partitionResponses = await Promise.all(
          td.partitionData.map(async (pd): Promise<Encodable<PartitionProduceResponse>> => {
            const base = { index: pd.index, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1 };
            if (unsupported) {
              return {
                ...base,
                errorCode: ErrorCode.UNSUPPORTED_VERSION,
                errorMessage:
                  ctx.apiVersion < 3
                    ? 'Produce v0-2 (message format v0/v1) is not supported'
                    : 'transactions are not supported yet',
              };
            }
            if (badAcks) return { ...base, errorCode: ErrorCode.INVALID_REQUIRED_ACKS };
            const partition = topic?.partitions[pd.index];
            if (!partition) {
              // In a cluster: a partition that exists but has no replica here is led elsewhere.
              const known = topic !== undefined && pd.index >= 0 && pd.index < topic.meta.partitions;
              return {
                ...base,
                errorCode: known ? ErrorCode.NOT_LEADER_OR_FOLLOWER : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
              };
            }
            if (!pd.records || pd.records.length === 0)
              return { ...base, errorCode: ErrorCode.CORRUPT_MESSAGE };
            try {
              const r = await partition.appendBatches(pd.records, acks, req.timeoutMs);
              return {
                ...base,
                errorCode: 0,
                baseOffset: r.baseOffset,
                logAppendTimeMs: r.logAppendTimeMs,
                logStartOffset: r.logStartOffset,
              };
            } catch (err) {
              if (err instanceof KafkaError) {
                if (err.errorCode === ErrorCode.KAFKA_STORAGE_ERROR)
                  warnStorageError(broker, `${td.name}-${pd.index}`, err.message);
                return { ...base, errorCode: err.errorCode, errorMessage: err.message };
              }
              broker.log.error(`append to ${td.name}-${pd.index} failed: ${(err as Error).stack ?? err}`);
              return {
                ...base,
                errorCode: ErrorCode.KAFKA_STORAGE_ERROR,
                errorMessage: (err as Error).message,
              };
            }
          }),
        );
        return { name: td.name, partitionResponses };
      }),
    );
    if (acks === 0) return NO_RESPONSE;
    const hints = new LeaderHints(broker);
    for (const t of responses) {
      for (const p of t.partitionResponses) {
        const leader = hints.leaderFor(t.name, p.index, p.errorCode);
        if (leader) p.currentLeader = leader;
      }
    }
    return { responses, throttleTimeMs: 0, nodeEndpoints: hints.endpoints() };
  },
);

const STORAGE_WARN_INTERVAL_MS = 10_000;
const lastStorageWarn = new WeakMap<Broker, Map<string, { atMs: number; suppressed: number }>>();

/**
 * Logs a produce the disk refused (full disk, I/O error) once per partition every 10 s, with a
 * count of those not logged: a full disk fails every produce, and the log would fill up too.
 */
function warnStorageError(broker: Broker, partition: string, message: string): void {
  let byPartition = lastStorageWarn.get(broker);
  if (!byPartition) {
    byPartition = new Map();
    lastStorageWarn.set(broker, byPartition);
  }
  const now = Date.now();
  const last = byPartition.get(partition);
  if (last && now - last.atMs < STORAGE_WARN_INTERVAL_MS) {
    last.suppressed++;
    return;
  }
  const more = last && last.suppressed > 0 ? ` (and ${last.suppressed} more since the last report)` : '';
  byPartition.set(partition, { atMs: now, suppressed: 0 });
  broker.log.error(`produce to ${partition} failed, answered KAFKA_STORAGE_ERROR: ${message}${more}`);
}

/** The topic as this broker's registry has it; in a cluster it appears once the metadata delta is applied. */
async function localTopic(broker: Broker, name: string): Promise<Topic | undefined> {
  for (let i = 0; i < 100; i++) {
    const t = broker.topics.get(name);
    if (t || !broker.cluster) return t;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}
