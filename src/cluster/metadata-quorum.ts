/**
 * MetadataQuorum: this node's seat in the Raft metadata quorum (KRaft's combined mode: every
 * node is a voter and a broker).
 *
 * - Runs the RaftDriver over `<data>/__cluster_metadata-0` and the controller listener.
 * - Applies every committed entry (one atomic batch of metadata records) to the MetadataImage and
 *   hands the resulting delta to the listeners (the broker's ReplicaManager, in log order).
 * - While this node is the Raft leader it is the *active controller*: it runs the Controller's
 *   operations one at a time (`run`): decide from the image, propose the records, wait until they
 *   are committed and applied, answer. Every operation therefore sees the effects of the previous
 *   one, and a lost leadership fails the operation (NOT_CONTROLLER) instead of applying it twice.
 *   A new leader serves only after it has applied everything committed before its term (its
 *   first entry, Raft's no-op, is applied), as KRaft's controller waits to catch up.
 * - Snapshots: every `snapshotEveryEntries` applied entries the image is written as a snapshot
 *   and the log before it dropped (RaftDriver.compact).
 */

import type { Logger } from '../broker/network.js';
import { Controller, type ControllerConfig } from '../metadata/controller.js';
import { type MetadataDelta, MetadataImage } from '../metadata/image.js';
import { type MetadataRecord, decodeMetadataBatch, encodeMetadataBatch } from '../metadata/records.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { NotLeaderError, type PeerAddress, RaftDriver, type RaftStatus } from '../raft/driver.js';
import type { LogEntry } from '../raft/log.js';
import type { Snapshot } from '../raft/messages.js';

export interface MetadataQuorumOptions {
  readonly nodeId: number;
  readonly voters: readonly PeerAddress[];
  readonly listen: { host: string; port: number };
  readonly dataDir: string;
  readonly clusterId: string;
  readonly controller: ControllerConfig;
  readonly electionTimeoutMs: number;
  readonly logger: Logger;
  readonly snapshotEveryEntries?: number;
  /** How often the active controller runs its periodic work (fencing, elections). */
  readonly controllerTickMs?: number;
  /** node.local.address: the local IP of Raft connections to the other voters. */
  readonly localAddress?: string;
  /**
   * The metadata log could not be written or read (full or failing disk): this node's Raft member
   * has stopped. Kafka stops a broker whose metadata log dir fails; so does `sluice start`.
   */
  readonly onFatal?: (err: Error) => void;
}

export type DeltaListener = (delta: MetadataDelta, image: MetadataImage) => void;

export class NotControllerError extends KafkaError {
  constructor(readonly controllerId: number | undefined) {
    super(
      ErrorCode.NOT_CONTROLLER,
      `this node is not the active controller (controller: ${controllerId ?? 'unknown'})`,
    );
  }
}

const TICK_MS = 50;

export class MetadataQuorum {
  image = new MetadataImage();
  private driver!: RaftDriver;
  private controller: Controller | undefined;
  /** The index this node must have applied before it serves as controller (its term's first entry). */
  private activationIndex = Number.POSITIVE_INFINITY;
  private activeTerm = -1;
  private opChain: Promise<unknown> = Promise.resolve();
  private readonly listeners: DeltaListener[] = [];
  private tickTimer: NodeJS.Timeout | undefined;
  private controllerTickRunning = false;
  private lastControllerTick = 0;
  private appliedSinceSnapshot = 0;
  private stopped = false;

  constructor(private readonly options: MetadataQuorumOptions) {}

  onDelta(listener: DeltaListener): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    const o = this.options;
    // Raft's timing in ticks of 50 ms: elections after 1-2x controller.quorum.election.timeout.ms.
    const minTicks = Math.max(4, Math.round(o.electionTimeoutMs / TICK_MS));
    this.driver = await RaftDriver.start({
      id: o.nodeId,
      voters: o.voters,
      listen: o.listen,
      dataDir: o.dataDir,
      clusterId: o.clusterId,
      tickMs: TICK_MS,
      electionTimeoutTicks: { min: minTicks, max: minTicks * 2 },
      heartbeatTicks: 2,
      transport: o.localAddress === undefined ? undefined : { localAddress: o.localAddress },
      apply: (entry) => this.applyEntry(entry),
      loadSnapshot: (s) => this.loadSnapshot(s),
      logger: { warn: (m) => o.logger.warn(`raft: ${m}`), info: (m) => o.logger.info(`raft: ${m}`) },
    });
    this.driver.on('leaderChange', (c) => {
      if (c.leaderId === o.nodeId && c.role === 'leader') {
        this.activeTerm = c.term;
        this.activationIndex = this.driver.status().lastIndex;
        this.controller = undefined;
        o.logger.info(
          `raft: leader of term ${c.term}; controller activates once index ${this.activationIndex} is applied`,
        );
      } else {
        if (this.controller)
          o.logger.info(`raft: no longer the leader (term ${c.term}, leader ${c.leaderId ?? 'unknown'})`);
        this.controller = undefined;
        this.activationIndex = Number.POSITIVE_INFINITY;
      }
    });
    this.driver.on('fatal', (err) => {
      o.logger.error(`raft: fatal: ${err.message}; this node stops serving metadata`);
      o.onFatal?.(err);
    });
    this.tickTimer = setInterval(() => this.tick(), TICK_MS);
    this.tickTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.controller = undefined;
    await this.driver?.stop();
  }

  get controllerPort(): number {
    return this.driver.port;
  }

  status(): RaftStatus {
    return this.driver.status();
  }

  /** The node the quorum follows as leader (the active controller), if known. */
  get leaderId(): number | undefined {
    return this.driver.status().leaderId;
  }

  get isActiveController(): boolean {
    return this.controller !== undefined;
  }

  /**
   * Runs one controller operation: `decide` reads the image and returns records (and a result);
   * the records are committed and applied before the returned promise resolves with
   * `finish(result)`, computed from the image after the change. Throws NotControllerError when
   * this node is not (or stops being) the active controller.
   */
  run<R, T>(
    decide: (c: Controller, nowMs: number) => { records: MetadataRecord[]; result: R },
    finish: (result: R, image: MetadataImage) => T,
  ): Promise<T> {
    const op = async (): Promise<T> => {
      const c = this.controller;
      if (!c || this.stopped) throw new NotControllerError(this.leaderId);
      const { records, result } = decide(c, Date.now());
      if (records.length > 0) {
        try {
          await this.driver.propose(encodeMetadataBatch(records));
        } catch (err) {
          if (err instanceof NotLeaderError) throw new NotControllerError(err.leaderId);
          throw err;
        }
      }
      return finish(result, this.image);
    };
    const next = this.opChain.then(op, op);
    this.opChain = next.catch(() => undefined);
    return next;
  }

  private tick(): void {
    if (this.stopped) return;
    const st = this.driver.status();
    if (
      !this.controller &&
      st.role === 'leader' &&
      st.term === this.activeTerm &&
      st.appliedIndex >= this.activationIndex
    ) {
      const c = new Controller(this.image, this.options.controller, Math.random);
      c.activate(Date.now());
      this.controller = c;
      this.options.logger.info(`controller: active (term ${st.term}, metadata offset ${this.image.offset})`);
    }
    const every = this.options.controllerTickMs ?? 250;
    if (this.controller && !this.controllerTickRunning && Date.now() - this.lastControllerTick >= every) {
      this.controllerTickRunning = true;
      this.lastControllerTick = Date.now();
      this.run(
        (c, now) => ({ records: c.tick(now), result: undefined }),
        () => undefined,
      )
        .catch((err: unknown) => {
          if (!(err instanceof NotControllerError))
            this.options.logger.warn(`controller tick: ${(err as Error).message}`);
        })
        .finally(() => {
          this.controllerTickRunning = false;
        });
    }
  }

  private applyEntry(entry: LogEntry): void {
    let records: MetadataRecord[];
    try {
      records = decodeMetadataBatch(Buffer.from(entry.data));
    } catch (err) {
      // A committed entry this node cannot read: continuing would diverge from the others.
      throw new Error(`metadata entry ${entry.index} is unreadable: ${(err as Error).message}`);
    }
    const delta = this.image.apply(records, entry.index);
    if (this.controller) {
      // Unclean elections may lose acknowledged records: the active controller says so, loudly.
      for (const { current, previous } of delta.partitionsChanged) {
        if (
          previous &&
          current.leader >= 0 &&
          current.leader !== previous.leader &&
          !previous.isr.includes(current.leader)
        ) {
          this.options.logger.warn(
            `unclean leader election: ${current.topic}-${current.partition} is now led by broker ${current.leader}, which was not in the ISR (${previous.isr.join(',')}); records acknowledged by the ISR may be lost`,
          );
        }
      }
    }
    // The controller decides from the image it holds; it is the same object, updated in place.
    for (const l of this.listeners) l(delta, this.image);
    this.maybeSnapshot(entry.index);
  }

  private loadSnapshot(s: Snapshot): void {
    const previous = this.image;
    const next = MetadataImage.fromRecords(decodeMetadataBatch(Buffer.from(s.data)), s.index);
    this.image = next;
    this.controller = undefined; // rebuilt over the new image by the next tick if still leader
    const delta = diffImages(previous, next);
    for (const l of this.listeners) l(delta, next);
  }

  private maybeSnapshot(index: number): void {
    const every = this.options.snapshotEveryEntries ?? 1000;
    if (++this.appliedSinceSnapshot < every) return;
    this.appliedSinceSnapshot = 0;
    // compact() runs inside apply: the driver's drain is re-entrant-safe.
    this.driver.compact(index, encodeMetadataBatch(this.image.toRecords()));
  }
}

/** Everything that differs between two images, as one delta (after loading a snapshot). */
export function diffImages(prev: MetadataImage, next: MetadataImage): MetadataDelta {
  const delta: MetadataDelta = {
    topicsCreated: [],
    topicsRemoved: [],
    partitionsChanged: [],
    brokersChanged: [],
    topicConfigsChanged: [],
  };
  for (const t of next.topics()) {
    const old = prev.topicById(t.topicId);
    if (!old) delta.topicsCreated.push(t);
    if (old && JSON.stringify(old.configs) !== JSON.stringify(t.configs))
      delta.topicConfigsChanged.push(t.name);
    for (const p of t.partitions) {
      const before = old?.partitions[p.partition];
      if (!before || JSON.stringify(before) !== JSON.stringify(p))
        delta.partitionsChanged.push({ current: p, previous: before });
    }
  }
  for (const t of prev.topics()) if (!next.topicById(t.topicId)) delta.topicsRemoved.push(t);
  const ids = new Set([...prev.brokers().map((b) => b.id), ...next.brokers().map((b) => b.id)]);
  for (const id of ids)
    if (JSON.stringify(prev.broker(id)) !== JSON.stringify(next.broker(id))) delta.brokersChanged.push(id);
  return delta;
}
