/**
 * Controller: the decisions of the active controller (KRaft's QuorumController with its
 * ClusterControlManager, ReplicationControlManager and ProducerIdControlManager), as pure code.
 *
 * The caller runs one operation at a time: it calls a method, proposes the returned records as one
 * Raft entry, waits until the entry is committed and applied to the image, then runs the next. So
 * every method decides from `image` as it is now, and never changes it. The only state kept here
 * is what the log does not hold: broker sessions (last heartbeat times), when leader balance was
 * last checked, and the image offset at which every partition was last found in order. Time comes
 * in as `nowMs` and randomness (placement, topic ids) from `random`.
 *
 * Leader election (KRaft without KIP-966's ELR): a partition whose leader is fenced, unregistered
 * or none elects the first replica (in replica order) that is in the ISR and live (registered and
 * unfenced); fenced brokers leave the ISR unless that would empty it. With no live ISR member the
 * partition goes offline (leader -1) keeping its ISR, unless unclean.leader.election.enable is true
 * for the topic: then the first live replica leads with ISR = [it], and acknowledged records may be
 * lost. Every committed record is on every ISR member recorded in the image (KIP-497: the leader
 * counts only the ISR the controller committed), so a clean election never loses one.
 *
 * What Kafka has that this does not: ELR (KIP-966), reassignments, controlled-shutdown state as a
 * record (a broker asking to shut down is fenced at once instead), leader.imbalance.per.broker.
 * percentage (any partition not led by its preferred replica is moved back).
 */

import { TOPIC_CONFIG_DEFAULTS, validateTopicConfig } from '../broker/config.js';
import { ErrorCode } from '../protocol/errors.js';
import { NO_LEADER } from '../replication/messages.js';
import type { BrokerRegistration, MetadataImage, PartitionMeta, TopicImage } from './image.js';
import { ZERO_TOPIC_ID, newTopicId, unifyCollisionChars, validateTopicName } from './names.js';
import {
  METADATA_BATCH_BYTES_MAX,
  type MetadataRecord,
  STRING_CHARS_MAX,
  metadataBatchBytes,
} from './records.js';

export interface ControllerConfig {
  /** broker.session.timeout.ms: a broker silent for longer is fenced. */
  sessionTimeoutMs: number;
  /** default.replication.factor and num.partitions, for CreateTopics asking for -1. */
  defaultReplicationFactor: number;
  defaultNumPartitions: number;
  /** Broker-level defaults of topic configs (unclean.leader.election.enable, ...). */
  topicConfigDefaults: Record<string, string>;
  /** leader.imbalance.check.interval.ms and auto.leader.rebalance.enable. */
  leaderImbalanceCheckIntervalMs: number;
  autoLeaderRebalance: boolean;
}

/** Kafka's MAX_PARTITIONS_PER_BATCH: the partitions one CreateTopics or CreatePartitions may add. */
export const PARTITIONS_PER_REQUEST_MAX = 10_000;

/** Partition changes one tick, heartbeat or registration writes; the next tick continues the rest. */
export const PARTITION_CHANGES_PER_OPERATION_MAX = 10_000;

/** The size of an AllocateProducerIds block (KRaft's ProducerIdControlManager). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;

const INT32_MAX = 2147483647;
const INCARNATION_ID_CHARS_MAX = 64;
const UNCLEAN_LEADER_ELECTION = 'unclean.leader.election.enable';

export interface BrokerRegistrationData {
  brokerId: number;
  incarnationId: string;
  host: string;
  port: number;
  rack: string | null;
}

export interface BrokerHeartbeatData {
  brokerId: number;
  brokerEpoch: number;
  /** The offset of the metadata the broker has applied. */
  currentMetadataOffset: number;
  /** Controlled shutdown: the broker asks to hand over its leaderships before stopping. */
  wantShutDown: boolean;
}

export interface BrokerHeartbeatResult {
  errorCode: ErrorCode;
  records: MetadataRecord[];
  /** The broker has applied the metadata up to its own registration. */
  isCaughtUp: boolean;
  /** Fenced once `records` apply. */
  isFenced: boolean;
  /** Controlled shutdown may complete: once `records` apply, the broker leads nothing. */
  shouldShutDown: boolean;
}

export interface CreatableTopic {
  name: string;
  /** -1: defaultNumPartitions (KIP-464). */
  numPartitions: number;
  /** -1: defaultReplicationFactor (KIP-464). */
  replicationFactor: number;
  /** A manual assignment (numPartitions and replicationFactor must then be -1). */
  assignments?: readonly { partitionIndex: number; brokerIds: readonly number[] }[];
  configs: readonly (readonly [string, string])[];
}

export interface CreatableTopicResult {
  name: string;
  errorCode: ErrorCode;
  errorMessage: string | null;
  /** The zero id on errors and for validateOnly. */
  topicId: string;
  numPartitions: number;
  replicationFactor: number;
}

/** A topic to delete: a string is a name; an object names it by exactly one of name and topicId. */
export type DeletableTopic = string | { name?: string | null; topicId?: string };

export interface DeletableTopicResult {
  name: string | null;
  topicId: string;
  errorCode: ErrorCode;
  errorMessage: string | null;
}

export interface CreatePartitionsTopic {
  name: string;
  /** The total partition count wanted. */
  count: number;
  /** Replica lists of the new partitions, one per new partition. */
  assignments?: readonly (readonly number[])[];
}

export interface AlterPartitionData {
  brokerId: number;
  brokerEpoch: number;
  topicId: string;
  partition: number;
  leaderEpoch: number;
  partitionEpoch: number;
  newIsr: readonly number[];
}

/** A planned partition: replicas, ISR, leader. */
interface Placement {
  replicas: number[];
  isr: number[];
  leader: number;
}

type Failure = { errorCode: ErrorCode; errorMessage: string | null };

export class Controller {
  /** Last heartbeat (or registration, or activation) time of each registered broker. */
  private readonly sessions = new Map<number, number>();
  private lastImbalanceCheckMs: number | undefined;
  /** The image offset at which a full scan found every partition in order (skip rescanning it). */
  private reconciledAtOffset: number | undefined;

  constructor(
    private readonly image: MetadataImage,
    private readonly config: ControllerConfig,
    private readonly random: () => number,
  ) {}

  /** This node became the active controller: every registered broker's session restarts now. */
  activate(nowMs: number): void {
    this.sessions.clear();
    for (const b of this.image.brokers()) this.sessions.set(b.id, nowMs);
    this.lastImbalanceCheckMs = nowMs;
    this.reconciledAtOffset = undefined;
  }

  // ---- brokers ---------------------------------------------------------------------------------

  /**
   * BrokerRegistration (KIP-631). The same incarnation already registered gets no records (its
   * epoch stands); a new incarnation gets a RegisterBroker (a new epoch, fenced until it catches
   * up). A new incarnation of a registered broker means it restarted without a controlled
   * shutdown: its old leaderships and ISR memberships go in the same batch, as KRaft's
   * handleBrokerUncleanShutdown does. The caller answers with image.broker(id).epoch once applied.
   */
  registerBroker(
    r: BrokerRegistrationData,
    nowMs: number,
  ): { errorCode: ErrorCode; records: MetadataRecord[] } {
    if (
      !isInt(r.brokerId, 0, INT32_MAX) ||
      !isInt(r.port, 0, 65535) ||
      typeof r.incarnationId !== 'string' ||
      r.incarnationId.length === 0 ||
      r.incarnationId.length > INCARNATION_ID_CHARS_MAX ||
      typeof r.host !== 'string' ||
      r.host.length > STRING_CHARS_MAX ||
      (r.rack !== null && (typeof r.rack !== 'string' || r.rack.length > STRING_CHARS_MAX))
    ) {
      return { errorCode: ErrorCode.INVALID_REGISTRATION, records: [] };
    }
    const existing = this.image.broker(r.brokerId);
    this.sessions.set(r.brokerId, nowMs);
    if (existing?.incarnationId === r.incarnationId) return { errorCode: ErrorCode.NONE, records: [] };
    const plan = new Plan(this.image);
    plan.brokerRecord(
      {
        type: 'RegisterBroker',
        brokerId: r.brokerId,
        incarnationId: r.incarnationId,
        host: r.host,
        port: r.port,
        rack: r.rack,
      },
      false,
    );
    if (existing !== undefined) this.reconcileAll(plan);
    return { errorCode: ErrorCode.NONE, records: plan.records() };
  }

  /**
   * BrokerHeartbeat (KIP-631). A heartbeat from an unregistered broker or for another epoch is
   * STALE_BROKER_EPOCH (Kafka answers both so). It restarts the broker's session; a fenced broker
   * is unfenced once it has applied the metadata up to its registration, and offline partitions it
   * can lead elect it. wantShutDown (controlled shutdown) fences the broker at once, moving its
   * leaderships to other live ISR members and taking it out of every ISR it does not hold alone.
   */
  heartbeat(h: BrokerHeartbeatData, nowMs: number): BrokerHeartbeatResult {
    const b = this.image.broker(h.brokerId);
    if (b === undefined || b.epoch !== h.brokerEpoch) {
      return {
        errorCode: ErrorCode.STALE_BROKER_EPOCH,
        records: [],
        isCaughtUp: false,
        isFenced: true,
        shouldShutDown: false,
      };
    }
    this.sessions.set(b.id, nowMs);
    const isCaughtUp = h.currentMetadataOffset >= b.epoch;
    const plan = new Plan(this.image);
    if (h.wantShutDown) {
      if (!b.fenced) plan.brokerRecord({ type: 'FenceBroker', brokerId: b.id, brokerEpoch: b.epoch }, false);
      if (!b.fenced || this.leadsAny(plan, b.id)) this.reconcileAll(plan);
      return {
        errorCode: ErrorCode.NONE,
        records: plan.records(),
        isCaughtUp,
        isFenced: true,
        shouldShutDown: !this.leadsAny(plan, b.id),
      };
    }
    if (b.fenced && isCaughtUp) {
      plan.brokerRecord({ type: 'UnfenceBroker', brokerId: b.id, brokerEpoch: b.epoch }, true);
      this.reconcileAll(plan);
    }
    return {
      errorCode: ErrorCode.NONE,
      records: plan.records(),
      isCaughtUp,
      isFenced: !plan.isLive(b.id),
      shouldShutDown: false,
    };
  }

  /**
   * Periodic work: fences brokers silent for longer than sessionTimeoutMs, brings every partition
   * in order (elections for those without a live leader, fenced brokers out of ISRs), and every
   * leaderImbalanceCheckIntervalMs (with autoLeaderRebalance) moves leadership back to the
   * preferred replica (replicas[0]) where it is live and in the ISR.
   */
  tick(nowMs: number): MetadataRecord[] {
    const plan = new Plan(this.image);
    for (const id of this.sessions.keys()) if (this.image.broker(id) === undefined) this.sessions.delete(id);
    for (const b of this.image.brokers()) {
      const lastMs = this.sessions.get(b.id);
      if (lastMs === undefined) {
        // Registered before this controller's time without a session (activate not called).
        this.sessions.set(b.id, nowMs);
      } else if (!b.fenced && nowMs - lastMs > this.config.sessionTimeoutMs) {
        plan.brokerRecord({ type: 'FenceBroker', brokerId: b.id, brokerEpoch: b.epoch }, false);
      }
    }
    // Nothing changes a partition's proper state but the image and this tick's fencing.
    if (plan.brokerRecordCount > 0 || this.reconciledAtOffset !== this.image.offset) {
      const complete = this.reconcileAll(plan);
      if (complete && plan.isEmpty()) this.reconciledAtOffset = this.image.offset;
    }
    if (this.config.autoLeaderRebalance) {
      this.lastImbalanceCheckMs ??= nowMs;
      if (nowMs - this.lastImbalanceCheckMs >= this.config.leaderImbalanceCheckIntervalMs) {
        this.lastImbalanceCheckMs = nowMs;
        this.rebalanceLeaders(plan);
      }
    }
    return plan.records();
  }

  // ---- topics ----------------------------------------------------------------------------------

  /**
   * CreateTopics, with KRaft's checks, error codes and messages. Placement is over live brokers:
   * leaders striped round-robin from a random start (each broker leads the same number of a
   * topic's partitions, ±1), followers on distinct brokers, and on distinct racks while racks
   * without a replica remain. Initial ISR = replicas, leader = replicas[0], epochs 0. A manual
   * assignment's ISR is its live replicas, led by the first.
   */
  createTopics(
    topics: readonly CreatableTopic[],
    validateOnly: boolean,
  ): { results: CreatableTopicResult[]; records: MetadataRecord[] } {
    const fail = (name: string, f: Failure): CreatableTopicResult => ({
      name,
      ...f,
      topicId: ZERO_TOPIC_ID,
      numPartitions: -1,
      replicationFactor: -1,
    });
    const tooMany = (message: string) => ({
      results: topics.map((t) =>
        fail(t.name, { errorCode: ErrorCode.POLICY_VIOLATION, errorMessage: message }),
      ),
      records: [],
    });
    let partitionsTotal = 0;
    for (const t of topics) {
      if (t.assignments !== undefined && t.assignments.length > 0) partitionsTotal += t.assignments.length;
      else if (t.numPartitions === -1) partitionsTotal += this.config.defaultNumPartitions;
      else if (t.numPartitions > 0) partitionsTotal += t.numPartitions;
    }
    if (partitionsTotal > PARTITIONS_PER_REQUEST_MAX) {
      return tooMany('Excessively large number of partitions per request.');
    }
    const counts = countBy(topics.map((t) => t.name));
    const live = this.image.liveBrokers();
    /** Existing topics and those this request creates, by their collision form ('.' as '_'). */
    const taken = new Map(this.image.topics().map((o) => [unifyCollisionChars(o.name), o.name]));
    const newIds = new Set<string>();
    const results: CreatableTopicResult[] = [];
    const records: MetadataRecord[] = [];
    for (const t of topics) {
      const checked = this.checkNewTopic(t, counts, taken);
      if (checked !== null) {
        results.push(fail(t.name, checked));
        continue;
      }
      const placed = this.placeNewTopic(t, live);
      if (!Array.isArray(placed)) {
        results.push(fail(t.name, placed));
        continue;
      }
      taken.set(unifyCollisionChars(t.name), t.name);
      const topicId = validateOnly
        ? ZERO_TOPIC_ID
        : newTopicId(this.random, (id) => newIds.has(id) || this.image.topicById(id) !== undefined);
      newIds.add(topicId);
      results.push({
        name: t.name,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        topicId,
        numPartitions: placed.length,
        replicationFactor: placed[0]!.replicas.length,
      });
      if (validateOnly) continue;
      records.push({ type: 'Topic', name: t.name, topicId });
      for (const [name, value] of new Map(t.configs)) {
        records.push({ type: 'Config', resourceType: 'topic', resourceName: t.name, name, value });
      }
      placed.forEach((p, partitionId) => records.push(partitionRecord(topicId, partitionId, p)));
    }
    // Config values make the batch's size unbounded by the partition cap alone.
    if (metadataBatchBytes(records) > METADATA_BATCH_BYTES_MAX) {
      return tooMany(`The topics' metadata exceeds ${METADATA_BATCH_BYTES_MAX} bytes; create fewer at once.`);
    }
    return { results, records };
  }

  /**
   * Creates an internal topic (__consumer_offsets) if absent, its replication factor capped to the
   * live brokers (at least 1). [] when it exists or no broker is live.
   */
  ensureTopic(
    name: string,
    numPartitions: number,
    replicationFactor: number,
    configs: readonly (readonly [string, string])[],
  ): MetadataRecord[] {
    if (this.image.topic(name) !== undefined) return [];
    const live = this.image.liveBrokers().length;
    if (live === 0) return [];
    const rf = Math.max(1, Math.min(replicationFactor, live));
    const r = this.createTopics([{ name, numPartitions, replicationFactor: rf, configs }], false);
    const result = r.results[0]!;
    if (result.errorCode !== ErrorCode.NONE) {
      throw new Error(`ensureTopic ${name}: ${ErrorCode[result.errorCode]}: ${result.errorMessage}`);
    }
    return r.records;
  }

  /**
   * DeleteTopics: unknown names are UNKNOWN_TOPIC_OR_PARTITION, unknown ids UNKNOWN_TOPIC_ID; a
   * topic named more than once in one request is INVALID_REQUEST for every mention (Kafka's
   * "Duplicate topic name." / "Duplicate topic id.") and is not deleted.
   */
  deleteTopics(topics: readonly DeletableTopic[]): {
    results: DeletableTopicResult[];
    records: MetadataRecord[];
  } {
    const resolved = topics.map((ref) => this.resolveDeletion(ref));
    const counts = countBy(resolved.map((r) => r.topic?.topicId).filter((id) => id !== undefined));
    const results: DeletableTopicResult[] = [];
    const records: MetadataRecord[] = [];
    for (const r of resolved) {
      if (r.topic === undefined) {
        results.push({ name: r.name, topicId: r.topicId, ...r.failure! });
      } else if (counts.get(r.topic.topicId)! > 1) {
        results.push({
          name: r.topic.name,
          topicId: r.topic.topicId,
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage: r.byId ? 'Duplicate topic id.' : 'Duplicate topic name.',
        });
      } else {
        results.push({
          name: r.topic.name,
          topicId: r.topic.topicId,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
        });
        records.push({ type: 'RemoveTopic', topicId: r.topic.topicId });
      }
    }
    return { results, records };
  }

  /** CreatePartitions, with KRaft's checks, error codes and messages. */
  createPartitions(
    reqs: readonly CreatePartitionsTopic[],
    validateOnly: boolean,
  ): {
    results: { name: string; errorCode: ErrorCode; errorMessage: string | null }[];
    records: MetadataRecord[];
  } {
    let added = 0;
    for (const r of reqs)
      added += Math.max(0, r.count - (this.image.topic(r.name)?.partitions.length ?? r.count));
    if (added > PARTITIONS_PER_REQUEST_MAX) {
      const errorMessage = 'Excessively large number of partitions per request.';
      return {
        results: reqs.map((r) => ({ name: r.name, errorCode: ErrorCode.POLICY_VIOLATION, errorMessage })),
        records: [],
      };
    }
    const counts = countBy(reqs.map((r) => r.name));
    const live = this.image.liveBrokers();
    const results: { name: string; errorCode: ErrorCode; errorMessage: string | null }[] = [];
    const records: MetadataRecord[] = [];
    for (const r of reqs) {
      const topic = this.image.topic(r.name);
      const placed: Placement[] | Failure =
        counts.get(r.name)! > 1
          ? { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Duplicate topic name.' }
          : topic === undefined
            ? { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null }
            : this.placeNewPartitions(topic, r, live);
      if (!Array.isArray(placed)) {
        results.push({ name: r.name, ...placed });
        continue;
      }
      results.push({ name: r.name, errorCode: ErrorCode.NONE, errorMessage: null });
      if (validateOnly) continue;
      const first = topic!.partitions.length;
      placed.forEach((p, i) => records.push(partitionRecord(topic!.topicId, first + i, p)));
    }
    return { results, records };
  }

  /**
   * AlterConfigs for one topic: `configs` is the full resulting set (what the caller computed from
   * AlterConfigs or IncrementalAlterConfigs); a name set now but null or absent there is removed.
   * Writes one Config record per config that changes.
   */
  alterTopicConfigs(
    name: string,
    configs: Readonly<Record<string, string | null>>,
    validateOnly: boolean,
  ): { errorCode: ErrorCode; errorMessage: string | null; records: MetadataRecord[] } {
    const topic = this.image.topic(name);
    if (topic === undefined) {
      return {
        errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        errorMessage: `The topic '${name}' does not exist.`,
        records: [],
      };
    }
    const records: MetadataRecord[] = [];
    for (const [key, value] of Object.entries(configs)) {
      if (value === null) continue;
      const error = checkConfig(key, value);
      if (error !== null) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: error, records: [] };
      if (topic.configs[key] !== value) {
        records.push({ type: 'Config', resourceType: 'topic', resourceName: name, name: key, value });
      }
    }
    for (const key of Object.keys(topic.configs)) {
      if ((configs[key] ?? null) === null) {
        records.push({ type: 'Config', resourceType: 'topic', resourceName: name, name: key, value: null });
      }
    }
    return { errorCode: ErrorCode.NONE, errorMessage: null, records: validateOnly ? [] : records };
  }

  // ---- partitions and producer ids ---------------------------------------------------------------

  /**
   * AlterPartition (KIP-497) from a partition leader proposing a new ISR. Checked in order: the
   * broker's epoch (STALE_BROKER_EPOCH), the topic (UNKNOWN_TOPIC_ID) and partition
   * (UNKNOWN_TOPIC_OR_PARTITION), that it is the leader (NOT_LEADER_OR_FOLLOWER), at the current
   * leader epoch (FENCED_LEADER_EPOCH) and partition epoch (INVALID_UPDATE_VERSION); then the ISR
   * itself: it must hold the leader, only replicas, each once, and only registered unfenced
   * brokers (INELIGIBLE_REPLICA). Since the epochs are checked first, INELIGIBLE_REPLICA means no
   * copy of the proposal was or will be applied. The same ISR as now is NONE with no records.
   */
  alterPartition(r: AlterPartitionData): { errorCode: ErrorCode; records: MetadataRecord[] } {
    const reject = (errorCode: ErrorCode) => ({ errorCode, records: [] });
    const broker = this.image.broker(r.brokerId);
    if (broker === undefined || broker.epoch !== r.brokerEpoch) return reject(ErrorCode.STALE_BROKER_EPOCH);
    const topic = this.image.topicById(r.topicId);
    if (topic === undefined) return reject(ErrorCode.UNKNOWN_TOPIC_ID);
    const p = topic.partitions[r.partition];
    if (p === undefined) return reject(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    if (r.brokerId !== p.leader) return reject(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    if (r.leaderEpoch !== p.leaderEpoch) return reject(ErrorCode.FENCED_LEADER_EPOCH);
    if (r.partitionEpoch !== p.partitionEpoch) return reject(ErrorCode.INVALID_UPDATE_VERSION);
    const eligible =
      r.newIsr.includes(p.leader) &&
      new Set(r.newIsr).size === r.newIsr.length &&
      r.newIsr.every((id) => p.replicas.includes(id) && this.image.broker(id)?.fenced === false);
    if (!eligible) return reject(ErrorCode.INELIGIBLE_REPLICA);
    if (r.newIsr.length === p.isr.length && r.newIsr.every((id) => p.isr.includes(id)))
      return reject(ErrorCode.NONE);
    return {
      errorCode: ErrorCode.NONE,
      records: [
        { type: 'PartitionChange', topicId: p.topicId, partitionId: p.partition, isr: [...r.newIsr] },
      ],
    };
  }

  /** AllocateProducerIds (KIP-730): the next block of PRODUCER_ID_BLOCK_SIZE ids. */
  allocateProducerIds(r: { brokerId: number; brokerEpoch: number }): {
    errorCode: ErrorCode;
    records: MetadataRecord[];
    firstProducerId: number;
    count: number;
  } {
    const broker = this.image.broker(r.brokerId);
    if (broker === undefined || broker.epoch !== r.brokerEpoch) {
      return { errorCode: ErrorCode.STALE_BROKER_EPOCH, records: [], firstProducerId: -1, count: 0 };
    }
    const firstProducerId = this.image.nextProducerId;
    const nextProducerId = firstProducerId + PRODUCER_ID_BLOCK_SIZE;
    // Kafka's limit is Long.MAX_VALUE; ours is the largest integer a JS number holds exactly.
    if (nextProducerId > Number.MAX_SAFE_INTEGER) {
      return { errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, records: [], firstProducerId: -1, count: 0 };
    }
    return {
      errorCode: ErrorCode.NONE,
      records: [{ type: 'ProducerIds', brokerId: r.brokerId, brokerEpoch: r.brokerEpoch, nextProducerId }],
      firstProducerId,
      count: PRODUCER_ID_BLOCK_SIZE,
    };
  }

  // ---- elections -------------------------------------------------------------------------------

  /**
   * Brings every partition in order under `plan` (see `reconcile`), up to the per-operation bound;
   * returns false when the bound stopped it early.
   */
  private reconcileAll(plan: Plan): boolean {
    for (const t of this.image.topics()) {
      const unclean = this.uncleanElectionEnabled(t);
      for (const p of t.partitions) {
        if (plan.partitionChangeCount >= PARTITION_CHANGES_PER_OPERATION_MAX) return false;
        reconcile(plan, p, unclean);
      }
    }
    return true;
  }

  /** Moves leadership back to the preferred replica where it is live and in the ISR. */
  private rebalanceLeaders(plan: Plan): void {
    for (const t of this.image.topics()) {
      for (const p of t.partitions) {
        if (plan.partitionChangeCount >= PARTITION_CHANGES_PER_OPERATION_MAX) return;
        const s = plan.state(p);
        const preferred = p.replicas[0]!;
        if (s.leader !== preferred && plan.isLive(preferred) && s.isr.includes(preferred)) {
          plan.setState(p, s.isr, preferred);
        }
      }
    }
  }

  private leadsAny(plan: Plan, brokerId: number): boolean {
    return this.image.topics().some((t) => t.partitions.some((p) => plan.state(p).leader === brokerId));
  }

  /** The topic's config, else the dynamic cluster default, else the static broker default, else Kafka's. */
  private uncleanElectionEnabled(t: TopicImage): boolean {
    const value =
      t.configs[UNCLEAN_LEADER_ELECTION] ??
      this.image.brokerConfig('')?.[UNCLEAN_LEADER_ELECTION] ??
      this.config.topicConfigDefaults[UNCLEAN_LEADER_ELECTION] ??
      TOPIC_CONFIG_DEFAULTS[UNCLEAN_LEADER_ELECTION];
    return value === 'true';
  }

  // ---- topic creation helpers --------------------------------------------------------------------

  /** The checks on a new topic before placement, in KRaft's order; null when it may be created. */
  private checkNewTopic(
    t: CreatableTopic,
    counts: Map<string, number>,
    taken: Map<string, string>,
  ): Failure | null {
    if (counts.get(t.name)! > 1)
      return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Duplicate topic name.' };
    const nameError = validateTopicName(t.name);
    if (nameError !== null) return { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, errorMessage: nameError };
    if (this.image.topic(t.name) !== undefined) {
      return { errorCode: ErrorCode.TOPIC_ALREADY_EXISTS, errorMessage: `Topic '${t.name}' already exists.` };
    }
    // The same name was answered above; a different one with the same collision form collides.
    const colliding = taken.get(unifyCollisionChars(t.name));
    if (colliding !== undefined) {
      return {
        errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION,
        errorMessage: `Topic '${t.name}' collides with existing topic: ${colliding}`,
      };
    }
    for (const [name, value] of t.configs) {
      const error = checkConfig(name, value);
      if (error !== null) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: error };
    }
    return null;
  }

  private placeNewTopic(t: CreatableTopic, live: readonly BrokerRegistration[]): Placement[] | Failure {
    if (t.assignments !== undefined && t.assignments.length > 0) {
      if (t.replicationFactor !== -1) {
        return invalidRequest(
          'A manual partition assignment was specified, but replication factor was not set to -1.',
        );
      }
      if (t.numPartitions !== -1) {
        return invalidRequest(
          'A manual partition assignment was specified, but numPartitions was not set to -1.',
        );
      }
      const byIndex = new Map<number, Placement>();
      let rf: number | undefined;
      for (const a of t.assignments) {
        if (byIndex.has(a.partitionIndex)) {
          return invalidAssignment(
            `Found multiple manual partition assignments for partition ${a.partitionIndex}`,
          );
        }
        const placed = this.manualPlacement(a.brokerIds, rf, a.partitionIndex);
        if (!('replicas' in placed)) return placed;
        rf = a.brokerIds.length;
        byIndex.set(a.partitionIndex, placed);
      }
      const out: Placement[] = [];
      for (let i = 0; i < byIndex.size; i++) {
        const p = byIndex.get(i);
        if (p === undefined)
          return invalidAssignment('partitions should be a consecutive 0-based integer sequence');
        out.push(p);
      }
      return out;
    }
    // -1 asks for the default (KIP-464); a default below 1 is as invalid as asking for it.
    const rf = t.replicationFactor === -1 ? this.config.defaultReplicationFactor : t.replicationFactor;
    if (!Number.isInteger(rf) || rf < 1) {
      return {
        errorCode: ErrorCode.INVALID_REPLICATION_FACTOR,
        errorMessage: 'Replication factor must be larger than 0, or -1 to use the default value.',
      };
    }
    const numPartitions = t.numPartitions === -1 ? this.config.defaultNumPartitions : t.numPartitions;
    if (!Number.isInteger(numPartitions) || numPartitions < 1) {
      return {
        errorCode: ErrorCode.INVALID_PARTITIONS,
        errorMessage: 'Number of partitions was set to an invalid non-positive value.',
      };
    }
    return this.placeAutomatically(live, numPartitions, rf, 0, undefined);
  }

  private placeNewPartitions(
    topic: TopicImage,
    r: CreatePartitionsTopic,
    live: readonly BrokerRegistration[],
  ): Placement[] | Failure {
    const current = topic.partitions.length;
    if (r.count < current) {
      return {
        errorCode: ErrorCode.INVALID_PARTITIONS,
        errorMessage: `The topic ${topic.name} currently has ${current} partition(s); ${r.count} would not be an increase.`,
      };
    }
    if (r.count === current) {
      return {
        errorCode: ErrorCode.INVALID_PARTITIONS,
        errorMessage: `Topic already has ${current} partition(s).`,
      };
    }
    const additional = r.count - current;
    // New partitions keep the topic's replication factor and continue its leader stripe. (A topic
    // always has a partition 0 when the controller created it; the default covers one that has none.)
    const partition0 = topic.partitions[0];
    const rf = partition0?.replicas.length ?? this.config.defaultReplicationFactor;
    if (r.assignments === undefined) {
      return this.placeAutomatically(live, additional, rf, current, partition0?.replicas[0]);
    }
    if (r.assignments.length !== additional) {
      return invalidAssignment(
        `Attempted to add ${additional} additional partition(s), but only ${r.assignments.length} assignment(s) were specified.`,
      );
    }
    const out: Placement[] = [];
    for (const [i, brokerIds] of r.assignments.entries()) {
      const placed = this.manualPlacement(brokerIds, rf, current + i);
      if (!('replicas' in placed)) return placed;
      out.push(placed);
    }
    return out;
  }

  /** Kafka's validateManualPartitionAssignment, then the ISR: the live replicas, led by the first. */
  private manualPlacement(
    brokerIds: readonly number[],
    rf: number | undefined,
    partitionIndex: number,
  ): Placement | Failure {
    if (brokerIds.length === 0)
      return invalidAssignment('The manual partition assignment includes an empty replica list.');
    let previous: number | undefined;
    for (const id of [...brokerIds].sort((a, b) => a - b)) {
      if (this.image.broker(id) === undefined) {
        return invalidAssignment(
          `The manual partition assignment includes broker ${id}, but no such broker is registered.`,
        );
      }
      if (id === previous) {
        return invalidAssignment(`The manual partition assignment includes the broker ${id} more than once.`);
      }
      previous = id;
    }
    if (rf !== undefined && brokerIds.length !== rf) {
      return invalidAssignment(
        `The manual partition assignment includes a partition with ${brokerIds.length} replica(s), but this is not consistent with previous partitions, which have ${rf} replica(s).`,
      );
    }
    const isr = brokerIds.filter((id) => this.image.broker(id)?.fenced === false);
    if (isr.length === 0) {
      return invalidAssignment(
        `All brokers specified in the manual partition assignment for partition ${partitionIndex} are fenced or in controlled shutdown.`,
      );
    }
    return { replicas: [...brokerIds], isr, leader: isr[0]! };
  }

  /**
   * Places `count` partitions numbered from `firstPartition` with `rf` replicas each over the live
   * brokers (see `placeReplicas`); `continueFrom` (partition 0's leader, for CreatePartitions)
   * continues the topic's stripe where it is still live, else it starts at random.
   */
  private placeAutomatically(
    live: readonly BrokerRegistration[],
    count: number,
    rf: number,
    firstPartition: number,
    continueFrom: number | undefined,
  ): Placement[] | Failure {
    if (rf > live.length) {
      return {
        errorCode: ErrorCode.INVALID_REPLICATION_FACTOR,
        errorMessage: `Unable to replicate the partition ${rf} time(s): The target replication factor of ${rf} cannot be reached because only ${live.length} broker(s) are registered.`,
      };
    }
    const arranged = arrangeByRack(live);
    const continued = continueFrom === undefined ? -1 : arranged.ids.indexOf(continueFrom);
    const start = continued >= 0 ? continued : this.randomIndex(arranged.ids.length);
    const shift = this.randomIndex(arranged.ids.length);
    return placeReplicas(arranged, count, rf, start, firstPartition, shift).map((replicas) => ({
      replicas,
      isr: [...replicas],
      leader: replicas[0]!,
    }));
  }

  /** Uniform in [0, n), whatever `random` returns. */
  private randomIndex(n: number): number {
    const i = Math.floor(this.random() * n);
    return Number.isInteger(i) && i >= 0 && i < n ? i : 0;
  }

  private resolveDeletion(ref: DeletableTopic): {
    name: string | null;
    topicId: string;
    byId: boolean;
    topic?: TopicImage;
    failure?: Failure;
  } {
    const name = typeof ref === 'string' ? ref : (ref.name ?? null);
    const id = typeof ref === 'string' || ref.topicId === ZERO_TOPIC_ID ? undefined : ref.topicId;
    if ((name === null) === (id === undefined)) {
      return {
        name,
        topicId: id ?? ZERO_TOPIC_ID,
        byId: false,
        failure: {
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage: 'Exactly one of topic name and topic id must be set.',
        },
      };
    }
    if (id !== undefined) {
      const topic = this.image.topicById(id);
      return topic !== undefined
        ? { name: topic.name, topicId: id, byId: true, topic }
        : {
            name: null,
            topicId: id,
            byId: true,
            failure: { errorCode: ErrorCode.UNKNOWN_TOPIC_ID, errorMessage: null },
          };
    }
    const topic = this.image.topic(name!);
    return topic !== undefined
      ? { name, topicId: topic.topicId, byId: false, topic }
      : {
          name,
          topicId: ZERO_TOPIC_ID,
          byId: false,
          failure: { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null },
        };
  }
}

/**
 * The changes one operation decides, staged over the image so that its later decisions see its
 * earlier ones (a broker fenced by this tick no longer counts as live for this tick's elections).
 * Partition changes are merged per partition: at most one PartitionChange each per operation.
 */
class Plan {
  private readonly brokerRecords: MetadataRecord[] = [];
  /** Liveness decided by this operation, over the image's. */
  private readonly liveness = new Map<number, boolean>();
  /** Planned states, keyed by the partition's current (image) object. */
  private readonly partitions = new Map<PartitionMeta, { isr: readonly number[]; leader: number }>();

  constructor(private readonly image: MetadataImage) {}

  get brokerRecordCount(): number {
    return this.brokerRecords.length;
  }

  get partitionChangeCount(): number {
    return this.partitions.size;
  }

  /** Registered and unfenced once this operation's records apply. */
  isLive(id: number): boolean {
    const decided = this.liveness.get(id);
    if (decided !== undefined) return decided;
    return this.image.broker(id)?.fenced === false;
  }

  brokerRecord(r: MetadataRecord & { brokerId: number }, liveAfter: boolean): void {
    this.brokerRecords.push(r);
    this.liveness.set(r.brokerId, liveAfter);
  }

  state(p: PartitionMeta): { readonly isr: readonly number[]; readonly leader: number } {
    return this.partitions.get(p) ?? p;
  }

  setState(p: PartitionMeta, isr: readonly number[], leader: number): void {
    this.partitions.set(p, { isr, leader });
  }

  isEmpty(): boolean {
    return this.records().length === 0;
  }

  /** The operation's batch: broker records, then one PartitionChange per partition that changes. */
  records(): MetadataRecord[] {
    const out = [...this.brokerRecords];
    for (const [p, s] of this.partitions) {
      const isrChanged = !sameList(s.isr, p.isr);
      const leaderChanged = s.leader !== p.leader;
      if (!isrChanged && !leaderChanged) continue;
      out.push({
        type: 'PartitionChange',
        topicId: p.topicId,
        partitionId: p.partition,
        ...(isrChanged ? { isr: [...s.isr] } : {}),
        ...(leaderChanged ? { leader: s.leader } : {}),
      });
    }
    return out;
  }
}

/**
 * Brings one partition in order: fenced brokers leave the ISR unless none would remain; a leader
 * that is not live or not in the ISR is replaced by the first replica in the ISR and live, else
 * (unclean election allowed) by the first live replica with ISR = [it], else by none (-1).
 */
function reconcile(plan: Plan, p: PartitionMeta, uncleanAllowed: boolean): void {
  const s = plan.state(p);
  const liveIsr = s.isr.filter((id) => plan.isLive(id));
  let isr: readonly number[] = liveIsr.length > 0 ? liveIsr : s.isr;
  let leader = s.leader;
  if (leader === NO_LEADER || !plan.isLive(leader) || !isr.includes(leader)) {
    leader = p.replicas.find((id) => isr.includes(id) && plan.isLive(id)) ?? NO_LEADER;
    if (leader === NO_LEADER && uncleanAllowed) {
      const any = p.replicas.find((id) => plan.isLive(id));
      if (any !== undefined) {
        leader = any;
        isr = [any];
      }
    }
  }
  if (leader !== s.leader || !sameList(isr, s.isr)) plan.setState(p, isr, leader);
}

/** Brokers in placement order, and their racks. */
interface Arrangement {
  ids: number[];
  rackOf: Map<number, string>;
  rackCount: number;
}

/**
 * Kafka's rack-alternated broker list: racks in name order, brokers by id within a rack, taken one
 * rack at a time (r1b1, r2b1, r3b1, r1b2, ...), so consecutive brokers sit on different racks.
 * Brokers without a rack form a rack of their own; with one rack this is the brokers by id.
 */
function arrangeByRack(brokers: readonly BrokerRegistration[]): Arrangement {
  const byRack = new Map<string, number[]>();
  const rackOf = new Map<number, string>();
  for (const b of [...brokers].sort((x, y) => x.id - y.id)) {
    const rack = JSON.stringify(b.rack); // keeps null apart from any rack name
    rackOf.set(b.id, rack);
    const ids = byRack.get(rack);
    if (ids === undefined) byRack.set(rack, [b.id]);
    else ids.push(b.id);
  }
  const racks = [...byRack.keys()].sort().map((r) => byRack.get(r)!);
  const ids: number[] = [];
  for (let i = 0; ids.length < brokers.length; i++) {
    for (const rack of racks) if (i < rack.length) ids.push(rack[i]!);
  }
  return { ids, rackOf, rackCount: racks.length };
}

/**
 * Kafka's assignReplicasToBrokers (rack-aware form; with one rack it is the plain one). Partition p
 * is led by ids[(p + start) % n], so leaders go round-robin; its followers are taken along the
 * list at a shift that grows every n partitions, skipping brokers already holding a replica and,
 * while some rack holds none, brokers on racks that do.
 */
function placeReplicas(
  a: Arrangement,
  count: number,
  rf: number,
  start: number,
  firstPartition: number,
  initialShift: number,
): number[][] {
  const n = a.ids.length;
  const out: number[][] = [];
  let shift = initialShift;
  for (let p = firstPartition; p < firstPartition + count; p++) {
    if (p > 0 && p % n === 0) shift++;
    const first = (p + start) % n;
    const leader = a.ids[first]!;
    const replicas = [leader];
    const racks = new Set([a.rackOf.get(leader)]);
    // Each follower is found within n - 1 steps: an unused rack (or, all racks used, an unused
    // broker) is always among the n - 1 other brokers the walk visits.
    for (let k = 0; replicas.length < rf; k++) {
      if (k >= rf * n) throw new Error(`placeReplicas: no follower found for partition ${p} (bug)`);
      const id = a.ids[(first + 1 + ((shift * a.rackCount + k) % (n - 1))) % n]!;
      const rack = a.rackOf.get(id);
      if (!replicas.includes(id) && (!racks.has(rack) || racks.size === a.rackCount)) {
        replicas.push(id);
        racks.add(rack);
      }
    }
    out.push(replicas);
  }
  return out;
}

function partitionRecord(topicId: string, partitionId: number, p: Placement): MetadataRecord {
  return {
    type: 'Partition',
    topicId,
    partitionId,
    replicas: p.replicas,
    isr: p.isr,
    leader: p.leader,
    leaderEpoch: 0,
    partitionEpoch: 0,
  };
}

/**
 * validateTopicConfig, plus what it misses: names inherited from Object.prototype ('constructor',
 * '__proto__' pass its `in` test) and the length a Kafka string (and a metadata record) may have.
 */
function checkConfig(name: string, value: string): string | null {
  if (!Object.hasOwn(TOPIC_CONFIG_DEFAULTS, name)) return `Unknown topic config name: ${name}`;
  if (value.length > STRING_CHARS_MAX)
    return `Invalid value for configuration ${name}: longer than ${STRING_CHARS_MAX}`;
  return validateTopicConfig(name, value);
}

function invalidRequest(errorMessage: string): Failure {
  return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage };
}

function invalidAssignment(errorMessage: string): Failure {
  return { errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage };
}

function countBy<T>(items: readonly T[]): Map<T, number> {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function isInt(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}
