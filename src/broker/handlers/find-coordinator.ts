/**
 * FindCoordinator (key 10), v0-6. v1 adds keyType, v3 is flexible, v4 batches keys
 * (coordinatorKeys, KIP-699), v5-6 add no request fields Sluice acts on (KIP-890, KIP-932).
 *
 * keyType 0 (group): this broker coordinates every group (it leads every partition of
 * `__consumer_offsets`, which is created here on first use). keyType 1 (transaction) and 2
 * (share) answer COORDINATOR_NOT_AVAILABLE until those coordinators exist; other key types
 * answer INVALID_REQUEST.
 */

import { partitionForGroup } from '../../group/coordinator.js';
import { CONSUMER_OFFSETS_TOPIC } from '../../group/group-log.js';
import { ErrorCode, errorName } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

const GROUP_KEY_TYPE = 0;
const TRANSACTION_KEY_TYPE = 1;
const SHARE_KEY_TYPE = 2;

interface Found {
  key: string;
  nodeId: number;
  host: string;
  port: number;
  errorCode: number;
  errorMessage: string | null;
}

async function find(broker: Broker, key: string, keyType: number): Promise<Found> {
  const miss = (errorCode: number, errorMessage: string | null = null): Found => ({
    key,
    nodeId: -1,
    host: '',
    port: -1,
    errorCode,
    errorMessage: errorMessage ?? errorName(errorCode),
  });
  if (keyType === TRANSACTION_KEY_TYPE || keyType === SHARE_KEY_TYPE)
    return miss(ErrorCode.COORDINATOR_NOT_AVAILABLE);
  if (keyType !== GROUP_KEY_TYPE)
    return miss(ErrorCode.INVALID_REQUEST, `Unknown coordinator type: ${keyType}`);
  if (broker.cluster) {
    // The coordinator is the leader of the group's __consumer_offsets partition.
    try {
      await broker.cluster.ensureOffsetsTopic();
    } catch (err) {
      return miss(
        ErrorCode.COORDINATOR_NOT_AVAILABLE,
        `could not create __consumer_offsets: ${(err as Error).message}`,
      );
    }
    const image = broker.cluster.quorum.image;
    const count = image.topic(CONSUMER_OFFSETS_TOPIC)?.partitions.length ?? 0;
    if (count === 0) return miss(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    const leader = broker.cluster.leaderOf(CONSUMER_OFFSETS_TOPIC, partitionForGroup(key, count));
    if (!leader || image.broker(leader.id)?.fenced) return miss(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    return {
      key,
      nodeId: leader.id,
      host: leader.host,
      port: leader.port,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
    };
  }
  try {
    await broker.groupLog.ensureTopic();
  } catch (err) {
    return miss(
      ErrorCode.COORDINATOR_NOT_AVAILABLE,
      `could not create __consumer_offsets: ${(err as Error).message}`,
    );
  }
  const adv = broker.advertised;
  return {
    key,
    nodeId: broker.nodeId,
    host: adv.host,
    port: adv.port,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
  };
}

export const findCoordinatorHandler = defineHandler<Broker, ApiKey.FindCoordinator>(
  ApiKey.FindCoordinator,
  { min: 0, max: 6 },
  async (ctx, req) => {
    const keyType = ctx.apiVersion >= 1 ? req.keyType : GROUP_KEY_TYPE;
    if (ctx.apiVersion >= 4) {
      const coordinators = await Promise.all(req.coordinatorKeys.map((k) => find(ctx.broker, k, keyType)));
      return { throttleTimeMs: 0, coordinators };
    }
    const f = await find(ctx.broker, req.key, keyType);
    return {
      throttleTimeMs: 0,
      errorCode: f.errorCode,
      errorMessage: f.errorMessage,
      nodeId: f.nodeId,
      host: f.host,
      port: f.port,
    };
  },
);
