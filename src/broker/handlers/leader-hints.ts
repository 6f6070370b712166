/**
 * KIP-951 leader hints: a partition answered NOT_LEADER_OR_FOLLOWER names its current leader and
 * leader epoch, and the response lists those leaders' endpoints, so the client retries at the
 * leader without a metadata round trip. Produce (v10+) and Fetch (v12+/v16+) use it; versions
 * without the fields do not encode them. Outside a cluster there is nothing to point to.
 */

import { ErrorCode } from '../../protocol/errors.js';
import type { Broker } from '../broker.js';

export interface NodeEndpoint {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export class LeaderHints {
  private readonly nodes = new Map<number, NodeEndpoint>();

  constructor(private readonly broker: Broker) {}

  /** The leader to name for a partition's answer, or undefined when there is none to give. */
  leaderFor(
    topic: string,
    partition: number | undefined,
    errorCode: number | undefined,
  ): { leaderId: number; leaderEpoch: number } | undefined {
    const image = this.broker.cluster?.quorum.image;
    if (!image || errorCode !== ErrorCode.NOT_LEADER_OR_FOLLOWER || partition === undefined) return undefined;
    const m = image.partition(topic, partition);
    if (!m || m.leader < 0) return undefined;
    const b = image.broker(m.leader);
    if (b) this.nodes.set(b.id, { nodeId: b.id, host: b.host, port: b.port, rack: b.rack });
    return { leaderId: m.leader, leaderEpoch: m.leaderEpoch };
  }

  /** The endpoints of every leader named so far. */
  endpoints(): NodeEndpoint[] {
    return [...this.nodes.values()];
  }
}
