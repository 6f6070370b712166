/**
 * A member of a consumer group (classic protocol): the broker's coordinator decides which member
 * reads which partition, and the member commits how far it has read.
 *
 * Lifecycle: FindCoordinator -> JoinGroup (KIP-394: the first join without a member id is
 * answered MEMBER_ID_REQUIRED with one to use) -> the leader runs the assignor the coordinator
 * chose ("range" or "roundrobin") over all members' subscriptions -> SyncGroup hands every member
 * its assignment -> OffsetFetch gives the start offsets (else autoOffsetReset) -> fetching through
 * a plain Consumer (consumer.ts, the one fetch path) while a timer heartbeats. A heartbeat
 * answered REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID makes the next poll()
 * commit, revoke everything (eager protocol) and join again.
 *
 * Invariants:
 * - All group work that touches positions (commits, revokes, joins) runs inside poll() or
 *   close(), never concurrently with a fetch, so a committed offset is always the position after
 *   records poll() already returned (Kafka's auto-commit semantics: at-least-once when records
 *   are processed before the next poll).
 * - The coordinator gets its own connection: JoinGroup is held by the broker until the
 *   rebalance completes, and a broker answers a connection's requests in order, so sharing it
 *   with fetches would stall them.
 * - Heartbeats run only while the member is in a stable generation; they never change the
 *   assignment themselves, they only flag that a rejoin is needed.
 * - Commits on revoke are skipped when the generation is known lost (ILLEGAL_GENERATION /
 *   UNKNOWN_MEMBER_ID): those partitions may already belong to another member.
 * - close() commits, then sends LeaveGroup (dynamic members; a static member, one with
 *   groupInstanceId, stays registered until its session times out, like Kafka's clients, so a
 *   restart within the session timeout causes no rebalance).
 */

import { ErrorCode, errorName } from '../protocol/errors.js';
import { ConsumerProtocolAssignmentVersions } from '../protocol/generated/consumer-protocol-assignment.js';
import { ApiKey } from '../protocol/generated/index.js';
import { type Cluster, sleep } from './cluster.js';
import { Connection } from './connection.js';
import { Consumer, type ConsumerOptions, type ConsumerRecord } from './consumer.js';
import { InvalidArgumentError, KafkaResponseError, SluiceClientError, kafkaError } from './errors.js';
import {
  ASSIGNORS,
  type AssignorName,
  CONSUMER_PROTOCOL_TYPE,
  type TopicPartitions,
  assign,
  commitOffsets,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  fetchOffsets,
  findCoordinator,
  isCoordinatorError,
} from './group-protocol.js';

export interface GroupConsumerOptions extends ConsumerOptions {
  groupId: string;
  /** Topics to subscribe to. */
  topics: string[];
  /** Static membership (KIP-345): a stable id for this member across restarts. */
  groupInstanceId?: string | null;
  /** session.timeout.ms. Default 45000. */
  sessionTimeoutMs?: number;
  /** The longest the coordinator waits for members to rejoin (max.poll.interval.ms). Default 300000. */
  rebalanceTimeoutMs?: number;
  /** heartbeat.interval.ms. Default 3000. */
  heartbeatIntervalMs?: number;
  /** enable.auto.commit. Default true. */
  autoCommit?: boolean;
  /** auto.commit.interval.ms. Default 5000. */
  autoCommitIntervalMs?: number;
  /** Assignors offered, in preference order. Default ['range', 'roundrobin']. */
  assignors?: AssignorName[];
  /** Send LeaveGroup on close. Default: true for dynamic members, false for static ones. */
  leaveGroupOnClose?: boolean;
  /** Called after a new assignment is taken (and start offsets resolved). */
  onAssigned?: (partitions: TopicPartitions[]) => void | Promise<void>;
  /** Called before the assignment is given up (after its offsets were committed). */
  onRevoked?: (partitions: TopicPartitions[]) => void | Promise<void>;
}

type State = 'unjoined' | 'joining' | 'stable' | 'closed';

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class GroupConsumer {
  readonly groupId: string;
  readonly groupInstanceId: string | null;
  private readonly consumer: Consumer;
  private readonly options: GroupConsumerOptions;
  private readonly topics: string[];
  private readonly sessionTimeoutMs: number;
  private readonly rebalanceTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private readonly assignors: AssignorName[];
  private readonly leaveGroupOnClose: boolean;
  private readonly maxWaitMs: number;

  private state: State = 'unjoined';
  private _memberId = '';
  private _generationId = -1;
  private _protocolName: string | null = null;
  private _leaderId = '';
  private coordinator: Connection | null = null;
  private coordinatorPromise: Promise<Connection> | null = null;
  private needsJoin = true;
  /** The generation was taken away (ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID): do not commit. */
  private generationLost = false;
  private fatal: Error | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private heartbeatInFlight = false;
  private lastCommitMs = Date.now();
  private readonly committed = new Map<string, number>();
  private current: TopicPartitions[] = [];
  private busy: Promise<unknown> | null = null;

  constructor(options: GroupConsumerOptions) {
    if (!options.groupId) throw new InvalidArgumentError('a group consumer needs a groupId');
    if (options.topics.length === 0)
      throw new InvalidArgumentError('a group consumer needs at least one topic');
    this.options = options;
    this.groupId = options.groupId;
    this.groupInstanceId = options.groupInstanceId ?? null;
    this.topics = [...new Set(options.topics)].sort();
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 45_000;
    this.rebalanceTimeoutMs = options.rebalanceTimeoutMs ?? 300_000;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 3000;
    this.autoCommit = options.autoCommit ?? true;
    this.autoCommitIntervalMs = options.autoCommitIntervalMs ?? 5000;
    this.assignors = options.assignors ?? [...ASSIGNORS];
    for (const a of this.assignors)
      if (!ASSIGNORS.includes(a))
        throw new InvalidArgumentError(`unknown assignor "${a}" (known: ${ASSIGNORS.join(', ')})`);
    this.leaveGroupOnClose = options.leaveGroupOnClose ?? this.groupInstanceId === null;
    this.maxWaitMs = options.maxWaitMs ?? 500;
    this.consumer = new Consumer(options);
  }

  get cluster(): Cluster {
    return this.consumer.cluster;
  }
  get memberId(): string {
    return this._memberId;
  }
  get generationId(): number {
    return this._generationId;
  }
  /** The assignor the coordinator chose for the current generation. */
  get protocolName(): string | null {
    return this._protocolName;
  }
  /** A method, not a field read, so TypeScript does not narrow it across awaits. */
  isClosed(): boolean {
    return this.state === 'closed';
  }
  get isLeader(): boolean {
    return this._memberId !== '' && this._memberId === this._leaderId;
  }

  /** The partitions assigned in the current generation. */
  assignment(): TopicPartitions[] {
    return this.current.map((t) => ({ topic: t.topic, partitions: [...t.partitions] }));
  }

  position(topic: string, partition: number): number {
    return this.consumer.position(topic, partition);
  }

  /** Moves a partition's position (the next commit stores it). */
  seek(topic: string, partition: number, offset: number): void {
    this.consumer.seek(topic, partition, offset);
  }

  /** Joins the group and waits for the first assignment. */
  async connect(): Promise<void> {
    await this.serial(async () => {
      await this.cluster.refreshMetadata([]);
      await this.join();
    });
  }

  /**
   * Fetches once (joining or rejoining first when needed, committing when the auto-commit
   * interval has passed). Returns the records that arrived; an empty array after maxWaitMs.
   */
  async poll(): Promise<ConsumerRecord[]> {
    return this.serial(async () => {
      if (this.isClosed()) return [];
      if (this.fatal) throw this.fatal;
      if (this.needsJoin) await this.join();
      if (this.isClosed()) return [];
      if (this.autoCommit && Date.now() - this.lastCommitMs >= this.autoCommitIntervalMs)
        await this.commitQuietly();
      if (this.needsJoin) return [];
      return this.consumer.poll();
    });
  }

  /** Commits the current positions of every assigned partition now. */
  async commit(): Promise<void> {
    await this.serial(() => this.commitPositions(true));
  }

  /** Yields records until close(). */
  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumerRecord> {
    while (this.state !== 'closed') {
      const records = await this.poll();
      for (const r of records) {
        if (this.isClosed()) return;
        yield r;
      }
    }
  }

  /** Commits (autoCommit), leaves the group (dynamic members) and closes every connection. */
  async close(): Promise<void> {
    if (this.isClosed()) return;
    // Wait for a poll in progress: it may be inside a fetch that advances positions.
    while (this.busy) await this.busy.catch(() => undefined);
    if (this.isClosed()) return;
    const wasStable = this.state === 'stable';
    this.state = 'closed';
    this.stopHeartbeat();
    try {
      if (wasStable) {
        if (this.autoCommit && !this.generationLost) {
          try {
            await this.commitPositions(false);
          } catch {
            // Best effort: the group may have moved on; the next owner starts at the last commit.
          }
        }
        await this.options.onRevoked?.(this.assignment());
      }
      if (this.leaveGroupOnClose && this._memberId !== '') await this.leaveGroup().catch(() => undefined);
    } finally {
      this.coordinator?.close();
      this.coordinator = null;
      await this.consumer.close();
    }
  }

  // -------------------------------------------------------------------------------------------

  /** Runs group work one call at a time (poll, commit, close never interleave). */
  private async serial<T>(fn: () => Promise<T>): Promise<T> {
    while (this.busy) await this.busy.catch(() => undefined);
    const p = fn();
    this.busy = p;
    try {
      return await p;
    } finally {
      if (this.busy === p) this.busy = null;
    }
  }

  private async coordinatorConnection(): Promise<Connection> {
    if (this.coordinator?.isOpen) return this.coordinator;
    this.coordinatorPromise ??= (async () => {
      const addr = await findCoordinator(this.cluster, this.groupId);
      const conn = await Connection.connect({
        host: addr.host,
        port: addr.port,
        clientId: this.options.clientId,
        requestTimeoutMs: this.options.requestTimeoutMs,
        connectTimeoutMs: this.options.connectTimeoutMs,
      });
      this.coordinator?.close();
      this.coordinator = conn;
      return conn;
    })().finally(() => {
      this.coordinatorPromise = null;
    });
    return this.coordinatorPromise;
  }

  private dropCoordinator(): void {
    this.coordinator?.close();
    this.coordinator = null;
  }

  /** Gives up the current assignment (committing it first unless the generation was lost). */
  private async revoke(): Promise<void> {
    this.stopHeartbeat();
    if (this.current.length > 0) {
      if (this.autoCommit && !this.generationLost) {
        try {
          await this.commitPositions(false);
        } catch {
          // The rebalance may have completed without us; the next owner starts at the last commit.
        }
      }
      await this.options.onRevoked?.(this.assignment());
    }
    this.current = [];
    this.committed.clear();
    await this.consumer.assign([]);
  }

  /** Rejoins until a generation with an assignment is reached (or the consumer is closed). */
  private async join(): Promise<void> {
    await this.revoke();
    this.state = 'joining';
    let backoff = 100;
    for (let attempt = 0; ; attempt++) {
      if (this.isClosed()) return;
      try {
        const assigned = await this.joinOnce();
        if (assigned === null) {
          // Join again (member id given, generation moved on, rebalance restarted).
          await sleep(20);
          continue;
        }
        await this.takeAssignment(assigned);
        return;
      } catch (err) {
        if (err instanceof KafkaResponseError && err.errorCode === ErrorCode.FENCED_INSTANCE_ID) {
          this.fatal = err;
          throw err;
        }
        const retriable =
          (err instanceof SluiceClientError && err.canRetry) ||
          (err instanceof KafkaResponseError && isCoordinatorError(err.errorCode));
        if (!retriable || attempt > 50) throw err;
        this.dropCoordinator();
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  /** One JoinGroup + SyncGroup round; null means "join again now". */
  private async joinOnce(): Promise<TopicPartitions[] | null> {
    const conn = await this.coordinatorConnection();
    const metadata = encodeSubscription({ topics: this.topics });
    const join = await conn.send(
      ApiKey.JoinGroup,
      {
        groupId: this.groupId,
        sessionTimeoutMs: this.sessionTimeoutMs,
        rebalanceTimeoutMs: this.rebalanceTimeoutMs,
        memberId: this._memberId,
        groupInstanceId: this.groupInstanceId,
        protocolType: CONSUMER_PROTOCOL_TYPE,
        protocols: this.assignors.map((name) => ({ name, metadata })),
        reason: null,
      },
      { timeoutMs: this.rebalanceTimeoutMs + conn.requestTimeoutMs },
    );
    switch (join.errorCode) {
      case ErrorCode.NONE:
        break;
      case ErrorCode.MEMBER_ID_REQUIRED:
        this._memberId = join.memberId;
        return null;
      case ErrorCode.UNKNOWN_MEMBER_ID:
        this._memberId = '';
        return null;
      case ErrorCode.ILLEGAL_GENERATION:
      case ErrorCode.REBALANCE_IN_PROGRESS:
        return null;
      default:
        throw kafkaError(join.errorCode, `JoinGroup of group "${this.groupId}"`);
    }
    this._memberId = join.memberId;
    this._generationId = join.generationId;
    this._protocolName = join.protocolName;
    this._leaderId = join.leader;
    this.generationLost = false;

    let assignments: { memberId: string; assignment: Buffer }[] = [];
    if (join.leader === join.memberId && !join.skipAssignment)
      assignments = await this.runAssignor(join.protocolName, join.members);

    const sync = await conn.send(
      ApiKey.SyncGroup,
      {
        groupId: this.groupId,
        generationId: this._generationId,
        memberId: this._memberId,
        groupInstanceId: this.groupInstanceId,
        protocolType: CONSUMER_PROTOCOL_TYPE,
        protocolName: join.protocolName,
        assignments,
      },
      { timeoutMs: this.rebalanceTimeoutMs + conn.requestTimeoutMs },
    );
    switch (sync.errorCode) {
      case ErrorCode.NONE:
        break;
      case ErrorCode.UNKNOWN_MEMBER_ID:
        this._memberId = '';
        return null;
      case ErrorCode.ILLEGAL_GENERATION:
      case ErrorCode.REBALANCE_IN_PROGRESS:
        return null;
      default:
        throw kafkaError(sync.errorCode, `SyncGroup of group "${this.groupId}"`);
    }
    const decoded = decodeAssignment(sync.assignment);
    return (decoded?.assignedPartitions ?? []).filter((t) => t.partitions.length > 0);
  }

  private async runAssignor(
    protocolName: string | null,
    members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[],
  ): Promise<{ memberId: string; assignment: Buffer }[]> {
    const name = (protocolName ?? this.assignors[0]) as AssignorName;
    if (!ASSIGNORS.includes(name))
      throw new SluiceClientError('UNKNOWN_ASSIGNOR', `the coordinator chose assignor "${protocolName}"`);
    let version: number = ConsumerProtocolAssignmentVersions.max;
    const assignorMembers = members.map((m) => {
      const sub = decodeSubscription(m.metadata);
      if (sub) version = Math.min(version, sub.version);
      return { memberId: m.memberId, groupInstanceId: m.groupInstanceId, topics: sub?.topics ?? [] };
    });
    const topics = [...new Set(assignorMembers.flatMap((m) => m.topics))];
    const counts = new Map<string, number>();
    if (topics.length > 0) {
      const res = await this.cluster.refreshMetadata(topics);
      for (const t of res.topics)
        if (t.name !== null && t.errorCode === 0 && t.partitions.length > 0)
          counts.set(t.name, t.partitions.length);
    }
    const plan = assign(name, assignorMembers, counts);
    return [...plan].map(([memberId, tps]) => ({
      memberId,
      assignment: encodeAssignment(tps, Math.max(0, version)),
    }));
  }

  /** Resolves start offsets (committed, else autoOffsetReset) and starts fetching and heartbeating. */
  private async takeAssignment(assigned: TopicPartitions[]): Promise<void> {
    const committed =
      assigned.length > 0
        ? await fetchOffsets(await this.coordinatorConnection(), this.groupId, assigned)
        : new Map();
    const reset = this.options.autoOffsetReset ?? 'latest';
    const specs: { topic: string; partition: number; offset: number | 'earliest' | 'latest' }[] = [];
    for (const t of assigned) {
      for (const p of t.partitions) {
        const c = committed.get(t.topic)?.get(p)?.offset ?? -1;
        if (c >= 0) {
          specs.push({ topic: t.topic, partition: p, offset: c });
          this.committed.set(tpKey(t.topic, p), c);
        } else if (reset === 'none') {
          throw new SluiceClientError(
            'NO_OFFSET',
            `group "${this.groupId}" has no committed offset for partition ${p} of topic "${t.topic}" and autoOffsetReset is "none"`,
          );
        } else {
          specs.push({ topic: t.topic, partition: p, offset: reset });
        }
      }
    }
    await this.consumer.assign(specs);
    this.current = assigned;
    this.state = 'stable';
    this.needsJoin = false;
    this.lastCommitMs = Date.now();
    this.startHeartbeat();
    await this.options.onAssigned?.(this.assignment());
  }

  private async commitQuietly(): Promise<void> {
    try {
      await this.commitPositions(false);
    } catch (err) {
      if (err instanceof KafkaResponseError && this.markRejoin(err.errorCode)) return;
      if (err instanceof SluiceClientError && err.canRetry) {
        this.dropCoordinator();
        return;
      }
      throw err;
    }
  }

  /** Commits positions that moved since the last commit (all of them when `all`). */
  private async commitPositions(all: boolean): Promise<void> {
    this.lastCommitMs = Date.now();
    if (this.state !== 'stable' && this.state !== 'closed') return;
    const offsets = this.consumer
      .positions()
      .filter((p) => all || this.committed.get(tpKey(p.topic, p.partition)) !== p.offset);
    if (offsets.length === 0) return;
    await commitOffsets(
      await this.coordinatorConnection(),
      {
        groupId: this.groupId,
        generationId: this._generationId,
        memberId: this._memberId,
        groupInstanceId: this.groupInstanceId,
      },
      offsets,
    );
    for (const o of offsets) this.committed.set(tpKey(o.topic, o.partition), o.offset);
  }

  /** Reacts to a group error code; true when it means "rejoin". */
  private markRejoin(code: number): boolean {
    switch (code) {
      case ErrorCode.REBALANCE_IN_PROGRESS:
        this.needsJoin = true;
        return true;
      case ErrorCode.ILLEGAL_GENERATION:
        this.generationLost = true;
        this.needsJoin = true;
        return true;
      case ErrorCode.UNKNOWN_MEMBER_ID:
        this.generationLost = true;
        this._memberId = '';
        this.needsJoin = true;
        return true;
      case ErrorCode.FENCED_INSTANCE_ID:
        this.fatal = kafkaError(code, `member "${this.groupInstanceId}" of group "${this.groupId}"`);
        this.needsJoin = true;
        return true;
      default:
        if (isCoordinatorError(code)) {
          this.dropCoordinator();
          return false;
        }
        return false;
    }
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private async heartbeat(): Promise<void> {
    if (this.state !== 'stable' || this.needsJoin || this.heartbeatInFlight) return;
    this.heartbeatInFlight = true;
    const generation = this._generationId;
    try {
      const conn = await this.coordinatorConnection();
      const res = await conn.send(ApiKey.Heartbeat, {
        groupId: this.groupId,
        generationId: generation,
        memberId: this._memberId,
        groupInstanceId: this.groupInstanceId,
      });
      if (res.errorCode !== 0 && this.state === 'stable' && generation === this._generationId)
        this.markRejoin(res.errorCode);
    } catch {
      // Connection trouble: find the coordinator again on the next beat.
      this.dropCoordinator();
    } finally {
      this.heartbeatInFlight = false;
    }
  }

  private async leaveGroup(): Promise<void> {
    const conn = await this.coordinatorConnection();
    const res = await conn.send(ApiKey.LeaveGroup, {
      groupId: this.groupId,
      memberId: this._memberId,
      members: [
        {
          memberId: this._memberId,
          groupInstanceId: this.groupInstanceId,
          reason: 'the consumer is closing',
        },
      ],
    });
    if (res.errorCode !== 0 && res.errorCode !== ErrorCode.UNKNOWN_MEMBER_ID)
      throw new KafkaResponseError(
        res.errorCode,
        `LeaveGroup of group "${this.groupId}": ${errorName(res.errorCode)}`,
      );
  }
}
