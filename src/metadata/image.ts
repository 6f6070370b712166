/**
 * MetadataImage: the cluster metadata every node builds by applying the committed metadata log,
 * one batch (one Raft entry) at a time: registered brokers, topics with their partitions and
 * configs, broker configs, and the next producer id block. KRaft's MetadataImage, applied with
 * KRaft's semantics:
 *
 * - RegisterBroker (re)registers a broker: its epoch is the offset of the batch holding the record,
 *   and it starts fenced. Fence/Unfence/UnregisterBroker name a registration by that epoch; one for
 *   an epoch that is not the current registration's is stale and ignored.
 * - PartitionChange bumps the partitionEpoch by 1, and the leaderEpoch by 1 when it changes the
 *   leader (an ISR-only change keeps the leaderEpoch).
 * - RemoveTopic drops the topic and its configs.
 *
 * Invariants, checked on every apply (a record that breaks one is a MetadataRecordError, and the
 * controller never writes one): partitions of a topic are numbered 0..n-1; every partition has a
 * non-empty ISR within its replicas, and a leader that is -1 (none) or an ISR member; topic names
 * and ids are unique; producer id blocks only move forward; offsets only increase.
 *
 * Everything the image hands out is frozen and never changes: a batch that changes a partition (or
 * a topic, or a broker) replaces its object, so consumers diff by identity. A batch is applied
 * atomically: it is staged against the current state and committed only if every record applied.
 */

import { NO_LEADER } from '../replication/messages.js';
import { type MetadataRecord, MetadataRecordError, checkMetadataRecord } from './records.js';

export interface BrokerRegistration {
  id: number;
  /** The offset of its RegisterBroker record (the batch holding it): KRaft's broker epoch. */
  epoch: number;
  incarnationId: string;
  host: string;
  port: number;
  rack: string | null;
  fenced: boolean;
}

export interface PartitionMeta {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** -1 (NO_LEADER): offline. */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
}

export interface TopicImage {
  readonly name: string;
  readonly topicId: string;
  /** Indexed by partition id. */
  readonly partitions: readonly PartitionMeta[];
  /** Only the configs set on the topic; the rest come from broker defaults. */
  readonly configs: Readonly<Record<string, string>>;
}

/** What one batch changed, for the consumers of the image (the broker's replica manager). */
export interface MetadataDelta {
  topicsCreated: TopicImage[];
  /** The removed topics as they were before the batch. */
  topicsRemoved: TopicImage[];
  /** Every partition created or changed, in the order first touched; `previous` undefined when new. */
  partitionsChanged: { current: PartitionMeta; previous: PartitionMeta | undefined }[];
  /** Brokers registered, fenced, unfenced or unregistered. */
  brokersChanged: number[];
  /** Names of topics that existed before the batch and still do, whose configs changed. */
  topicConfigsChanged: string[];
}

type ProducerIdsRecord = Extract<MetadataRecord, { type: 'ProducerIds' }>;

export class MetadataImage {
  private offsetValue = -1;
  private nextProducerIdValue = 0;
  /** The last ProducerIds record, kept whole so a snapshot can write it back. */
  private producerIdsRecord: ProducerIdsRecord | undefined;
  private readonly brokerMap = new Map<number, BrokerRegistration>();
  /** In creation order, which snapshots keep: topics() is stable across a snapshot. */
  private readonly topicsById = new Map<string, TopicImage>();
  private readonly topicIdsByName = new Map<string, string>();
  private readonly brokerConfigMap = new Map<string, Readonly<Record<string, string>>>();

  /** The Raft index of the last applied batch (-1 before any). */
  get offset(): number {
    return this.offsetValue;
  }

  /** The first producer id of the next block to hand out (from the last ProducerIds record). */
  get nextProducerId(): number {
    return this.nextProducerIdValue;
  }

  /** Applies one committed batch, atomically; throws MetadataRecordError (image unchanged) if invalid. */
  apply(records: readonly MetadataRecord[], offset: number): MetadataDelta {
    if (!Number.isSafeInteger(offset) || offset <= this.offsetValue) {
      throw new MetadataRecordError(
        `batch offset ${offset} does not follow the applied offset ${this.offsetValue}`,
      );
    }
    const batch = new Batch(
      this.brokerMap,
      this.topicsById,
      this.topicIdsByName,
      this.brokerConfigMap,
      offset,
    );
    batch.nextProducerId = this.nextProducerIdValue;
    batch.producerIdsRecord = this.producerIdsRecord;
    records.forEach((raw, i) => {
      const record = checkMetadataRecord(raw, i);
      try {
        batch.apply(record);
      } catch (err) {
        if (err instanceof MetadataRecordError) {
          throw new MetadataRecordError(
            `batch at offset ${offset}, record ${i} (${record.type}): ${err.message}`,
            { cause: err },
          );
        }
        throw err;
      }
    });
    const delta = batch.commit();
    this.nextProducerIdValue = batch.nextProducerId;
    this.producerIdsRecord = batch.producerIdsRecord;
    this.offsetValue = offset;
    return delta;
  }

  /** All registered brokers, by id. */
  brokers(): BrokerRegistration[] {
    return [...this.brokerMap.values()].sort((a, b) => a.id - b.id);
  }

  broker(id: number): BrokerRegistration | undefined {
    return this.brokerMap.get(id);
  }

  /** Registered and unfenced brokers, by id: the ones that may lead, follow in the ISR, or be placed on. */
  liveBrokers(): BrokerRegistration[] {
    return this.brokers().filter((b) => !b.fenced);
  }

  topic(name: string): TopicImage | undefined {
    const id = this.topicIdsByName.get(name);
    return id === undefined ? undefined : this.topicsById.get(id);
  }

  topicById(id: string): TopicImage | undefined {
    return this.topicsById.get(id);
  }

  /** All topics, in creation order. */
  topics(): TopicImage[] {
    return [...this.topicsById.values()];
  }

  partition(topic: string, p: number): PartitionMeta | undefined {
    return this.topic(topic)?.partitions[p];
  }

  /** Dynamic configs of one broker ('' is the cluster-wide default), if any are set. */
  brokerConfig(resourceName: string): Readonly<Record<string, string>> | undefined {
    return this.brokerConfigMap.get(resourceName);
  }

  /** A snapshot: replaying it into a fresh image (`fromRecords`) gives an equal image. */
  toRecords(): MetadataRecord[] {
    const out: MetadataRecord[] = [];
    for (const b of this.brokers()) {
      out.push({
        type: 'RegisterBroker',
        brokerId: b.id,
        incarnationId: b.incarnationId,
        host: b.host,
        port: b.port,
        rack: b.rack,
        brokerEpoch: b.epoch,
        fenced: b.fenced,
      });
    }
    for (const [resourceName, configs] of this.brokerConfigMap) {
      for (const [name, value] of Object.entries(configs)) {
        out.push({ type: 'Config', resourceType: 'broker', resourceName, name, value });
      }
    }
    if (this.producerIdsRecord !== undefined) out.push({ ...this.producerIdsRecord });
    for (const t of this.topicsById.values()) {
      out.push({ type: 'Topic', name: t.name, topicId: t.topicId });
      for (const [name, value] of Object.entries(t.configs)) {
        out.push({ type: 'Config', resourceType: 'topic', resourceName: t.name, name, value });
      }
      for (const p of t.partitions) {
        out.push({
          type: 'Partition',
          topicId: t.topicId,
          partitionId: p.partition,
          replicas: [...p.replicas],
          isr: [...p.isr],
          leader: p.leader,
          leaderEpoch: p.leaderEpoch,
          partitionEpoch: p.partitionEpoch,
        });
      }
    }
    return out;
  }

  /** An image holding `records` (a snapshot from toRecords) as of `offset`. */
  static fromRecords(records: readonly MetadataRecord[], offset: number): MetadataImage {
    const image = new MetadataImage();
    image.apply(records, offset);
    return image;
  }
}

/** A topic being changed by a batch: copies of its partitions and configs. */
interface TopicDraft {
  readonly name: string;
  readonly topicId: string;
  readonly partitions: PartitionMeta[];
  readonly configs: Record<string, string>;
  /** The topic before the batch; undefined when the batch creates it. */
  readonly base: TopicImage | undefined;
  partitionsDirty: boolean;
  configsDirty: boolean;
}

/**
 * One batch staged over the image's maps: reads go through the overlays to the committed state,
 * writes go to the overlays only (null: removed), and commit() writes the overlays back.
 */
class Batch {
  nextProducerId = 0;
  producerIdsRecord: ProducerIdsRecord | undefined;
  private readonly brokerOverlay = new Map<number, BrokerRegistration | null>();
  private readonly topicOverlay = new Map<string, TopicDraft | null>();
  private readonly nameOverlay = new Map<string, string | null>();
  private readonly brokerConfigOverlay = new Map<string, Record<string, string>>();
  /** The state before the batch of every partition it touched, keyed `topicId:partition`. */
  private readonly previousPartitions = new Map<
    string,
    { topicId: string; partition: number; previous: PartitionMeta | undefined }
  >();

  constructor(
    private readonly brokers: Map<number, BrokerRegistration>,
    private readonly topicsById: Map<string, TopicImage>,
    private readonly topicIdsByName: Map<string, string>,
    private readonly brokerConfigs: Map<string, Readonly<Record<string, string>>>,
    private readonly offset: number,
  ) {}

  apply(r: MetadataRecord): void {
    switch (r.type) {
      case 'RegisterBroker':
        this.brokerOverlay.set(
          r.brokerId,
          Object.freeze({
            id: r.brokerId,
            epoch: r.brokerEpoch ?? this.offset,
            incarnationId: r.incarnationId,
            host: r.host,
            port: r.port,
            rack: r.rack,
            fenced: r.fenced ?? true,
          }),
        );
        return;
      case 'FenceBroker':
      case 'UnfenceBroker': {
        const b = this.broker(r.brokerId);
        const fenced = r.type === 'FenceBroker';
        // A record for an older registration (or none) is stale: ignored, as KRaft does.
        if (b === undefined || b.epoch !== r.brokerEpoch || b.fenced === fenced) return;
        this.brokerOverlay.set(r.brokerId, Object.freeze({ ...b, fenced }));
        return;
      }
      case 'UnregisterBroker': {
        const b = this.broker(r.brokerId);
        if (b === undefined || b.epoch !== r.brokerEpoch) return;
        this.brokerOverlay.set(r.brokerId, null);
        return;
      }
      case 'Topic': {
        if (this.topicIdByName(r.name) !== undefined)
          throw new MetadataRecordError(`topic ${r.name} already exists`);
        // An id once seen in this batch stays taken, so per-partition history never mixes topics.
        if (this.topicsById.has(r.topicId) || this.topicOverlay.has(r.topicId)) {
          throw new MetadataRecordError(`topic id ${r.topicId} is already in use`);
        }
        this.topicOverlay.set(r.topicId, {
          name: r.name,
          topicId: r.topicId,
          partitions: [],
          configs: {},
          base: undefined,
          partitionsDirty: true,
          configsDirty: true,
        });
        this.nameOverlay.set(r.name, r.topicId);
        return;
      }
      case 'Partition': {
        const t = this.draft(r.topicId);
        if (r.partitionId !== t.partitions.length) {
          // Replacing a partition would let its epochs go backwards; a gap would break 0..n-1.
          throw new MetadataRecordError(
            `partition ${t.name}-${r.partitionId}: topic has ${t.partitions.length} partition(s), the next must be ${t.partitions.length}`,
          );
        }
        const p = makePartition(
          t,
          r.partitionId,
          r.replicas,
          r.isr,
          r.leader,
          r.leaderEpoch,
          r.partitionEpoch,
        );
        this.touchPartition(t, r.partitionId, undefined);
        t.partitions.push(p);
        t.partitionsDirty = true;
        return;
      }
      case 'PartitionChange': {
        const t = this.draft(r.topicId);
        const prev = t.partitions[r.partitionId];
        if (prev === undefined) throw new MetadataRecordError(`unknown partition ${t.name}-${r.partitionId}`);
        const leader = r.leader ?? prev.leader;
        const p = makePartition(
          t,
          r.partitionId,
          r.replicas ?? prev.replicas,
          r.isr ?? prev.isr,
          leader,
          leader === prev.leader ? prev.leaderEpoch : prev.leaderEpoch + 1,
          prev.partitionEpoch + 1,
        );
        this.touchPartition(t, r.partitionId, prev);
        t.partitions[r.partitionId] = p;
        t.partitionsDirty = true;
        return;
      }
      case 'Config':
        if (r.resourceType === 'topic') {
          const id = this.topicIdByName(r.resourceName);
          if (id === undefined)
            throw new MetadataRecordError(`config ${r.name} for unknown topic ${r.resourceName}`);
          const t = this.draft(id);
          if (setConfig(t.configs, r.name, r.value)) t.configsDirty = true;
        } else {
          let configs = this.brokerConfigOverlay.get(r.resourceName);
          if (configs === undefined) {
            configs = { ...this.brokerConfigs.get(r.resourceName) };
            this.brokerConfigOverlay.set(r.resourceName, configs);
          }
          setConfig(configs, r.name, r.value);
        }
        return;
      case 'RemoveTopic': {
        const t = this.draft(r.topicId);
        this.topicOverlay.set(r.topicId, null);
        this.nameOverlay.set(t.name, null);
        return;
      }
      case 'ProducerIds':
        // Blocks handed out must never overlap: the next block only moves forward.
        if (r.nextProducerId <= this.nextProducerId) {
          throw new MetadataRecordError(
            `nextProducerId ${r.nextProducerId} does not move past ${this.nextProducerId}`,
          );
        }
        this.nextProducerId = r.nextProducerId;
        this.producerIdsRecord = r;
        return;
    }
  }

  /** Writes the staged changes into the image's maps and returns what changed. */
  commit(): MetadataDelta {
    const delta: MetadataDelta = {
      topicsCreated: [],
      topicsRemoved: [],
      partitionsChanged: [],
      brokersChanged: [],
      topicConfigsChanged: [],
    };
    for (const [id, b] of this.brokerOverlay) {
      if (b === null) this.brokers.delete(id);
      else this.brokers.set(id, b);
      delta.brokersChanged.push(id);
    }
    for (const [name, configs] of this.brokerConfigOverlay) {
      if (Object.keys(configs).length === 0) this.brokerConfigs.delete(name);
      else this.brokerConfigs.set(name, Object.freeze(configs));
    }
    // Removals first: a removed topic's name may be taken by a topic this batch creates.
    for (const [id, draft] of this.topicOverlay) {
      if (draft !== null) continue;
      const base = this.topicsById.get(id);
      if (base === undefined) continue; // created and removed within the batch
      this.topicsById.delete(id);
      this.topicIdsByName.delete(base.name);
      delta.topicsRemoved.push(base);
    }
    for (const [id, draft] of this.topicOverlay) {
      if (draft === null || (!draft.partitionsDirty && !draft.configsDirty)) continue;
      const image: TopicImage = Object.freeze({
        name: draft.name,
        topicId: id,
        partitions: Object.freeze(draft.partitions),
        configs: Object.freeze(draft.configs),
      });
      this.topicsById.set(id, image);
      this.topicIdsByName.set(draft.name, id);
      if (draft.base === undefined) delta.topicsCreated.push(image);
      else if (draft.configsDirty) delta.topicConfigsChanged.push(draft.name);
    }
    for (const { topicId, partition, previous } of this.previousPartitions.values()) {
      const current = this.topicsById.get(topicId)?.partitions[partition];
      if (current !== undefined && current !== previous) delta.partitionsChanged.push({ current, previous });
    }
    return delta;
  }

  private broker(id: number): BrokerRegistration | undefined {
    const staged = this.brokerOverlay.get(id);
    if (staged !== undefined) return staged ?? undefined;
    return this.brokers.get(id);
  }

  private topicIdByName(name: string): string | undefined {
    const staged = this.nameOverlay.get(name);
    if (staged !== undefined) return staged ?? undefined;
    return this.topicIdsByName.get(name);
  }

  /** The batch's working copy of a topic, made on first write; unknown topic ids throw. */
  private draft(topicId: string): TopicDraft {
    const staged = this.topicOverlay.get(topicId);
    if (staged !== undefined) {
      if (staged === null) throw new MetadataRecordError(`topic id ${topicId} was removed`);
      return staged;
    }
    const base = this.topicsById.get(topicId);
    if (base === undefined) throw new MetadataRecordError(`unknown topic id ${topicId}`);
    const draft: TopicDraft = {
      name: base.name,
      topicId,
      partitions: [...base.partitions],
      configs: { ...base.configs },
      base,
      partitionsDirty: false,
      configsDirty: false,
    };
    this.topicOverlay.set(topicId, draft);
    return draft;
  }

  private touchPartition(t: TopicDraft, partition: number, previous: PartitionMeta | undefined): void {
    const key = `${t.topicId}:${partition}`;
    if (!this.previousPartitions.has(key))
      this.previousPartitions.set(key, { topicId: t.topicId, partition, previous });
  }
}

/** Sets (or with null removes) one config; returns whether anything changed. */
function setConfig(configs: Record<string, string>, name: string, value: string | null): boolean {
  const present = Object.hasOwn(configs, name);
  if (value === null) {
    if (!present) return false;
    delete configs[name];
    return true;
  }
  if (present && configs[name] === value) return false;
  // defineProperty, not assignment: a name such as '__proto__' must become an own property.
  Object.defineProperty(configs, name, { value, enumerable: true, writable: true, configurable: true });
  return true;
}

/** A new, frozen partition state, after checking the partition invariants. */
function makePartition(
  t: TopicDraft,
  partition: number,
  replicas: readonly number[],
  isr: readonly number[],
  leader: number,
  leaderEpoch: number,
  partitionEpoch: number,
): PartitionMeta {
  const name = `${t.name}-${partition}`;
  if (replicas.length === 0) throw new MetadataRecordError(`partition ${name} has no replicas`);
  if (isr.length === 0) throw new MetadataRecordError(`partition ${name} has an empty ISR`);
  for (const id of isr) {
    if (!replicas.includes(id))
      throw new MetadataRecordError(`partition ${name}: ISR member ${id} is not a replica`);
  }
  if (leader !== NO_LEADER && !isr.includes(leader)) {
    throw new MetadataRecordError(`partition ${name}: leader ${leader} is not in the ISR`);
  }
  return Object.freeze({
    topic: t.name,
    topicId: t.topicId,
    partition,
    replicas: Object.freeze([...replicas]),
    isr: Object.freeze([...isr]),
    leader,
    leaderEpoch,
    partitionEpoch,
  });
}
