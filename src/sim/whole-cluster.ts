/**
 * The whole-cluster simulator: N nodes (3 or 5), each a Raft voter of the metadata quorum AND a
 * broker, composed from the real pure state machines — RaftNode (src/raft), MetadataImage and
 * Controller (src/metadata), PartitionReplica over MemoryReplicaLog (src/replication) — on a
 * simulated clock, network and disk, with faults chosen by a seed. `runWholeClusterSim({ seed })`
 * is a pure function of its options: a seed replays step for step.
 *
 * What each node runs, as src/cluster does for real:
 * - Raft (src/cluster/metadata-quorum.ts): its log carries metadata batches (encodeMetadataBatch);
 *   committed entries are applied to the node's own MetadataImage; a leader becomes the active
 *   controller once it has applied its term's first entry, and runs Controller operations one at a
 *   time: decide from the image, propose, wait until applied (a lost leadership fails the operation
 *   with NOT_CONTROLLER). Periodically the controller ticks (fencing, elections from the ISR, leader
 *   rebalance). Snapshots (image.toRecords) compact the log when the seed says so.
 * - Broker lifecycle (src/cluster/broker-lifecycle.ts): register with a fresh incarnation id per
 *   process, heartbeat with the applied metadata offset, re-register on STALE_BROKER_EPOCH.
 * - Controller channel (src/cluster/controller-channel.ts): calls go to the Raft leader the node
 *   knows, retried on NOT_CONTROLLER or an attempt timeout until an overall deadline. An answer is
 *   accepted only for the current attempt (a timed-out attempt's connection is gone).
 * - Replica manager (src/cluster/replica-manager.ts): every applied metadata change is fed to the
 *   PartitionReplica of each partition the broker holds; followers' Fetch/OffsetForLeaderEpoch
 *   requests and the leaders' answers travel over the simulated network; ISR proposals go to the
 *   controller as AlterPartition.
 *
 * The disk: Raft writes go through SimDisk (a crash loses writes not yet fsynced, except a random
 * prefix). A replica log is durable up to its flushed offset; an append is flushed after a random
 * delay; a crash loses the unflushed tail, except a random prefix of batches. A restarted node
 * rebuilds Raft from its durable state, its image from the snapshot and the committed log, and its
 * replicas with PartitionReplica.recover (epoch cache rebuilt from the batches; the high watermark
 * restarts at 0, as ReplicatedPartition.open does).
 *
 * The clients (node 0): an admin creates one or two topics (replication factor 3,
 * min.insync.replicas 2) through the controller, retrying until it exists; a producer sends
 * batches with acks=all to the broker it believes leads (from a random node's image), retries on
 * errors and timeouts with fresh values, and records every acknowledged (partition, offset, value).
 *
 * Faults (fault phase only): message delay (reordering), drop and duplication (AlterPartition and
 * produce requests excepted: their senders rely on at most one live copy, as over TCP), network
 * partitions and one-way cuts that heal, process pauses (a stalled node neither acts nor receives
 * and wakes up with stale state, its messages waiting), node crashes and restarts. Then faults stop, everything
 * heals and restarts, and liveness is required: a stable Raft leader and active controller, every
 * topic created, every broker unfenced, new acks=all produces acknowledged on every partition, and
 * every partition converged (all replicas in the ISR, equal logs, HW at the log end). Finally the
 * checker's end checks run (whole-cluster-checker.ts).
 *
 * Timing assumptions the real system also makes: the network's delivery bound (delayTicksMax) is
 * below every controller-call attempt timeout, and the AlterPartition retry interval exceeds the
 * channel's overall deadline, so one ISR proposal has at most one live copy.
 *
 * One tick (TICK_MS of simulated time):
 *   1. faults: restarts due, a crash, a pause, a partition or heal; paused nodes due resume;
 *   2. the network (and in-process loopback) delivers the messages due;
 *   3. each live node completes its due Raft writes, ticks Raft, activates/ticks the controller,
 *      runs its operations, heartbeats, completes replica flushes, ticks replicas, sends follower
 *      requests, retries controller calls, compacts;
 *   4. the clients act (admin, metadata refresh, produce);
 *   5. the WholeClusterChecker checks every node (fully every `fullCheckEveryTicks`).
 */

import { Controller, type ControllerConfig, type CreatableTopic } from '../metadata/controller.js';
import { type MetadataDelta, MetadataImage, type PartitionMeta } from '../metadata/image.js';
import { type MetadataRecord, decodeMetadataBatch, encodeMetadataBatch } from '../metadata/records.js';
import { ErrorCode } from '../protocol/errors.js';
import { type LogEntry, type RaftConfig, type RaftMessage, RaftNode, type Snapshot } from '../raft/raft.js';
import type {
  AlterPartitionRequest,
  AlterPartitionResponse,
  FollowerRequest,
  LeaderResponse,
} from '../replication/messages.js';
import { NO_LEADER } from '../replication/messages.js';
import {
  DEFAULT_REPLICA_CONFIG,
  PartitionReplica,
  type ReplicaConfig,
} from '../replication/partition-replica.js';
import { MemoryReplicaLog } from '../replication/replica-log.js';
import { SimNetwork } from '../replication/sim/network.js';
import { valuesBatch } from '../storage/test-batches.js';
import { Violation } from './checker.js';
import { describeMessage } from './cluster.js';
import { SimDisk } from './disk.js';
import { Prng } from './prng.js';
import { WholeClusterChecker, type WholeNodeView, partitionKey } from './whole-cluster-checker.js';

export const TICK_MS = 10;
const CLIENT_ID = 0;
const ELECTION_TICKS = { min: 10, max: 20 };
const RAFT_HEARTBEAT_TICKS = 3;
const CONTROLLER_TICK_MS = 50;
const SESSION_TIMEOUT_MS = 600;
const BROKER_HEARTBEAT_MS = 100;
const BROKER_HEARTBEAT_FENCED_MS = 50;
const REPLICATION_FACTOR = 3;
/** Operations queued at one controller; beyond, requests are refused (a bound, never reached). */
const CONTROLLER_OPS_MAX = 10_000;
/** Produce requests one partition may have in flight from the client. */
const PRODUCES_INFLIGHT_MAX = 2;
const PRODUCE_TIMEOUT_MS = 800;
const CLIENT_PRODUCE_TIMEOUT_TICKS = 120;
const METADATA_REFRESH_TICKS = 50;
/** Messages a paused node's socket buffers hold; beyond, they drop. */
const INBOX_MAX = 10_000;

/** Controller channel timings (attempt, overall) in ms, scaled from controller-channel.ts. */
const CALL_TIMEOUTS = {
  register: { attemptMs: 300, totalMs: 1000 },
  heartbeat: { attemptMs: 100, totalMs: 300 },
  alter: { attemptMs: 200, totalMs: 500 },
} as const;

/** Deliberate bugs the checker must catch. */
export type WholeSimBug =
  /** Controller with unclean.leader.election.enable=true, topics with min.insync.replicas=1. */
  | 'unclean-election'
  /** PartitionReplica unsafe flags. */
  | 'replica-report-unflushed'
  | 'replica-truncate-to-hw'
  | 'replica-hw-over-confirmed-isr'
  /** RaftNode unsafe flags. */
  | 'raft-ack-before-fsync'
  | 'raft-vote-without-log-check'
  /**
   * The broker composition before a05f88d: replicas follow every metadata delta from the start,
   * so a restarted broker acts on the partition states it replays from its log (history).
   */
  | 'replicas-follow-replayed-metadata';

export const WHOLE_SIM_BUGS: readonly WholeSimBug[] = [
  'unclean-election',
  'replica-report-unflushed',
  'replica-truncate-to-hw',
  'replica-hw-over-confirmed-isr',
  'raft-ack-before-fsync',
  'raft-vote-without-log-check',
  'replicas-follow-replayed-metadata',
];

export interface WholeSimOptions {
  readonly seed: number;
  /** 3 or 5; chosen by the seed when absent. */
  readonly nodeCount?: number;
  readonly faultTicks?: number;
  readonly settleTicksMax?: number;
  /** Stop after this many ticks (replay); liveness is not judged then. */
  readonly ticksMax?: number;
  readonly fullCheckEveryTicks?: number;
  readonly bug?: WholeSimBug;
  /** Overrides parts of the fault profile the seed chooses (exploration with harsher faults). */
  readonly profile?: Partial<WholeFaultProfile>;
  /** Default: on, unless a bug is injected. */
  readonly checkLiveness?: boolean;
  /** Step log; with `verbose`, every message delivery too. */
  readonly log?: (line: string) => void;
  readonly verbose?: boolean;
}

export interface WholeFaultProfile {
  readonly nodeCount: number;
  readonly topics: readonly { readonly name: string; readonly partitions: number }[];
  readonly truncation: ReplicaConfig['truncation'];
  readonly delayTicksMax: number;
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly fsyncTicksMax: number;
  readonly crashRate: number;
  readonly restartTicksMax: number;
  readonly partitionRate: number;
  readonly healRate: number;
  readonly produceRate: number;
  readonly compactEveryEntries: number | undefined;
  readonly autoLeaderRebalance: boolean;
  /** A process stalls (GC, SIGSTOP): it neither acts nor receives, and wakes with stale state. */
  readonly pauseRate: number;
  readonly pauseTicksMax: number;
}

export interface WholeSimStats {
  raftLeaderTermMax: number;
  committedIndex: number;
  controllerActivations: number;
  controllerOps: number;
  /** From the committed metadata log: PartitionChanges naming a leader (-1 included), ISR changes, fences. */
  partitionLeaderChanges: number;
  offlinePartitions: number;
  isrChanges: number;
  fencings: number;
  /** Replica log truncations (follower truncation by epoch or diverging epoch). */
  truncations: number;
  produced: number;
  acked: number;
  produceErrors: number;
  crashes: number;
  partitions: number;
  pauses: number;
  snapshots: number;
  messagesSent: number;
  messagesDropped: number;
}

export interface WholeSimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: Violation | undefined;
  readonly ticks: number;
  readonly profile: WholeFaultProfile;
  readonly stats: WholeSimStats;
}

export function chooseWholeProfile(prng: Prng, nodeCount: number | undefined): WholeFaultProfile {
  const topics = [{ name: 'orders', partitions: prng.int(1, 3) }];
  if (prng.chance(0.5)) topics.push({ name: 'events', partitions: prng.int(1, 2) });
  return {
    nodeCount: nodeCount ?? (prng.chance(0.5) ? 3 : 5),
    topics,
    truncation: prng.chance(0.5) ? 'offset-for-leader-epoch' : 'fetch-diverging-epoch',
    delayTicksMax: prng.int(1, 5),
    dropRate: prng.pick([0, 0.01, 0.03, 0.08]),
    duplicateRate: prng.pick([0, 0.02, 0.08]),
    fsyncTicksMax: prng.int(0, 6),
    crashRate: prng.pick([0, 0.001, 0.003, 0.006]),
    restartTicksMax: prng.int(20, 200),
    partitionRate: prng.pick([0, 0.002, 0.005, 0.01]),
    healRate: prng.pick([0.01, 0.03, 0.1]),
    produceRate: prng.pick([0.1, 0.3, 0.6]),
    compactEveryEntries: prng.chance(0.5) ? prng.int(8, 40) : undefined,
    autoLeaderRebalance: prng.chance(0.5),
    pauseRate: prng.pick([0, 0.001, 0.003, 0.006]),
    pauseTicksMax: prng.int(5, 80),
  };
}

// ---- messages -------------------------------------------------------------------------------------

type CtlRequest =
  | { readonly type: 'register'; readonly brokerId: number; readonly incarnationId: string }
  | {
      readonly type: 'heartbeat';
      readonly brokerId: number;
      readonly brokerEpoch: number;
      readonly currentMetadataOffset: number;
    }
  | {
      readonly type: 'alter';
      readonly brokerId: number;
      readonly brokerEpoch: number;
      readonly topicId: string;
      readonly partition: number;
      readonly request: AlterPartitionRequest;
    }
  | { readonly type: 'create-topics'; readonly topics: readonly CreatableTopic[] };

type CtlResponse =
  | { readonly type: 'register'; readonly errorCode: ErrorCode; readonly brokerEpoch: number }
  | { readonly type: 'heartbeat'; readonly errorCode: ErrorCode; readonly isFenced: boolean }
  | { readonly type: 'alter'; readonly errorCode: ErrorCode; readonly response: AlterPartitionResponse }
  | { readonly type: 'create-topics'; readonly errorCode: ErrorCode; readonly results: readonly ErrorCode[] };

type WireMessage =
  | { readonly kind: 'raft'; readonly from: number; readonly to: number; readonly body: RaftMessage }
  | {
      readonly kind: 'ctl-request';
      readonly from: number;
      readonly to: number;
      readonly fromIncarnation: number;
      readonly callId: number;
      readonly attempt: number;
      readonly body: CtlRequest;
    }
  | {
      readonly kind: 'ctl-response';
      readonly from: number;
      readonly to: number;
      readonly toIncarnation: number;
      readonly callId: number;
      readonly attempt: number;
      readonly body: CtlResponse;
    }
  | {
      readonly kind: 'replica-request';
      readonly from: number;
      readonly to: number;
      readonly fromIncarnation: number;
      readonly partition: string;
      readonly body: FollowerRequest;
    }
  | {
      readonly kind: 'replica-response';
      readonly from: number;
      readonly to: number;
      readonly toIncarnation: number;
      readonly partition: string;
      readonly body: LeaderResponse;
    }
  | {
      readonly kind: 'produce';
      readonly from: number;
      readonly to: number;
      readonly requestId: number;
      readonly partition: string;
      readonly values: readonly string[];
    }
  | {
      readonly kind: 'produce-response';
      readonly from: number;
      readonly to: number;
      readonly requestId: number;
      readonly errorCode: ErrorCode;
      readonly baseOffset: number;
    };

// ---- node state -----------------------------------------------------------------------------------

interface PartitionStore {
  /** Survives crashes: after one it holds only what was flushed (and surviving batches). */
  readonly log: MemoryReplicaLog;
  flushes: { atTick: number; upTo: number }[];
  truncationsSeen: number;
}

interface HostedReplica {
  readonly key: string;
  readonly topicId: string;
  readonly partition: number;
  readonly replica: PartitionReplica;
  readonly store: PartitionStore;
}

/** One controller operation, as MetadataQuorum.run takes it. */
interface ControllerOp {
  readonly name: string;
  readonly decide: (
    c: Controller,
    nowMs: number,
  ) => { readonly records: MetadataRecord[]; readonly finish: (image: MetadataImage) => void };
  readonly fail: (errorCode: ErrorCode) => void;
}

interface ChannelCall {
  readonly id: number;
  readonly body: CtlRequest;
  readonly deadlineTick: number;
  readonly attemptTicks: number;
  attempt: number;
  /** The tick the current attempt times out; undefined while none is in flight. */
  attemptDeadlineTick: number | undefined;
  retryAtTick: number;
  readonly onAnswer: (r: CtlResponse) => void;
  readonly onGiveUp: () => void;
}

interface WholeNode extends WholeNodeView {
  readonly id: number;
  incarnation: number;
  raft: RaftNode | undefined;
  readonly disk: SimDisk;
  restartAtTick: number | undefined;
  /** Paused until this tick: messages wait in `inbox`, nothing runs. */
  pausedUntilTick: number | undefined;
  inbox: WireMessage[];
  image: MetadataImage;
  appliedIndex: number;
  // The controller seat.
  controller: Controller | undefined;
  activeTerm: number;
  activationIndex: number;
  ops: ControllerOp[];
  opInFlight:
    | {
        readonly op: ControllerOp;
        readonly index: number;
        readonly term: number;
        readonly finish: (image: MetadataImage) => void;
      }
    | undefined;
  controllerTickRunning: boolean;
  lastControllerTickMs: number;
  // The broker.
  incarnationId: string;
  brokerEpoch: number;
  fenced: boolean;
  lifecycleBusy: boolean;
  nextLifecycleTick: number;
  /** Unfenced once in this incarnation: from then on replicas follow the image (ReplicaManager.catchUp). */
  caughtUp: boolean;
  readonly calls: Map<number, ChannelCall>;
  readonly replicas: Map<string, HostedReplica>;
  readonly logs: Map<string, PartitionStore>;
  /** acks=all produces waiting at this broker: produceId -> the client's request. */
  readonly produces: Map<
    number,
    { readonly requestId: number; readonly key: string; readonly values: readonly string[] }
  >;
}

interface ClientProduce {
  readonly key: string;
  readonly values: readonly string[];
  readonly sentTick: number;
}

export class WholeClusterSim {
  tick = 0;
  readonly nodes: WholeNode[] = [];
  readonly network: SimNetwork<WireMessage>;
  readonly checker: WholeClusterChecker;
  readonly profile: WholeFaultProfile;
  readonly stats: WholeSimStats = {
    raftLeaderTermMax: 0,
    committedIndex: 0,
    controllerActivations: 0,
    controllerOps: 0,
    partitionLeaderChanges: 0,
    offlinePartitions: 0,
    isrChanges: 0,
    fencings: 0,
    truncations: 0,
    produced: 0,
    acked: 0,
    produceErrors: 0,
    crashes: 0,
    partitions: 0,
    pauses: 0,
    snapshots: 0,
    messagesSent: 0,
    messagesDropped: 0,
  };
  /** The client's acknowledged records: partition key -> offset -> value. */
  readonly acked = new Map<string, Map<number, string>>();
  ackedSinceHeal = new Map<string, number>();
  producing = true;
  private faultsOn = true;
  private readonly prng: Prng;
  private readonly faultPrng: Prng;
  private readonly clientPrng: Prng;
  private readonly diskPrng: Prng;
  private readonly voters: number[];
  private readonly controllerConfig: ControllerConfig;
  private readonly replicaConfig: Omit<ReplicaConfig, 'brokerId' | 'minInsyncReplicas'>;
  private readonly raftUnsafe: RaftConfig['unsafe'];
  private readonly topicConfigs: readonly (readonly [string, string])[];
  private loopback: { atTick: number; message: WireMessage }[] = [];
  private callSeq = 0;
  private produceSeq = 0;
  private valueSeq = 0;
  // The clients.
  private readonly clientProduces = new Map<number, ClientProduce>();
  private readonly clientLeaders = new Map<string, number>();
  private nextMetadataRefreshTick = 0;
  private readonly topicsCreated = new Set<string>();
  private adminCall: { id: number; sentTick: number } | undefined;
  private nextAdminTick = 1;

  constructor(
    readonly options: WholeSimOptions,
    profile: WholeFaultProfile,
    prng: Prng,
  ) {
    this.profile = profile;
    this.prng = prng;
    this.faultPrng = prng.fork();
    this.clientPrng = prng.fork();
    this.diskPrng = prng.fork();
    this.network = new SimNetwork<WireMessage>(prng.fork(), {
      delayTicksMin: 1,
      delayTicksMax: profile.delayTicksMax,
      dropRate: profile.dropRate,
      duplicateRate: profile.duplicateRate,
      inflightMax: 50_000,
    });
    const bug = options.bug;
    this.checker = new WholeClusterChecker(profile.nodeCount);
    this.controllerConfig = {
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      defaultReplicationFactor: REPLICATION_FACTOR,
      defaultNumPartitions: 1,
      topicConfigDefaults: {
        'unclean.leader.election.enable': bug === 'unclean-election' ? 'true' : 'false',
      },
      leaderImbalanceCheckIntervalMs: 3000,
      autoLeaderRebalance: profile.autoLeaderRebalance,
    };
    this.topicConfigs = [['min.insync.replicas', bug === 'unclean-election' ? '1' : '2']];
    const replicaUnsafe: ReplicaConfig['unsafe'] =
      bug === 'replica-report-unflushed'
        ? { reportUnflushed: true }
        : bug === 'replica-truncate-to-hw'
          ? { truncateToHighWatermark: true }
          : bug === 'replica-hw-over-confirmed-isr'
            ? { hwOverConfirmedIsr: true }
            : undefined;
    this.raftUnsafe =
      bug === 'raft-ack-before-fsync'
        ? { ackBeforeFsync: true }
        : bug === 'raft-vote-without-log-check'
          ? { voteWithoutLogCheck: true }
          : undefined;
    this.replicaConfig = {
      ...DEFAULT_REPLICA_CONFIG,
      replicaLagTimeMaxMs: 400,
      replicaFetchMaxBytes: 2048,
      // Above the channel's overall deadline for AlterPartition: one live copy per proposal.
      alterPartitionRetryMs: 600,
      followerRequestTimeoutMs: 200,
      followerBackoffMs: 30,
      truncation: profile.truncation,
      pendingProducesMax: 1000,
      unsafe: replicaUnsafe,
    };
    this.voters = Array.from({ length: profile.nodeCount }, (_, i) => i + 1);
    for (const id of this.voters) {
      const n: WholeNode = {
        id,
        incarnation: 0,
        raft: undefined,
        disk: new SimDisk(),
        restartAtTick: undefined,
        pausedUntilTick: undefined,
        inbox: [],
        image: new MetadataImage(),
        appliedIndex: 0,
        controller: undefined,
        activeTerm: -1,
        activationIndex: Number.POSITIVE_INFINITY,
        ops: [],
        opInFlight: undefined,
        controllerTickRunning: false,
        lastControllerTickMs: 0,
        incarnationId: '',
        brokerEpoch: -1,
        fenced: true,
        lifecycleBusy: false,
        nextLifecycleTick: 0,
        caughtUp: false,
        calls: new Map(),
        replicas: new Map(),
        logs: new Map(),
        produces: new Map(),
      };
      this.nodes.push(n);
      this.start(n);
    }
  }

  get nowMs(): number {
    return this.tick * TICK_MS;
  }

  log(line: string): void {
    this.options.log?.(`[${String(this.tick).padStart(5)}] ${line}`);
  }

  private node(id: number): WholeNode | undefined {
    return this.nodes[id - 1];
  }

  // ---- lifecycle ----------------------------------------------------------------------------------

  private start(n: WholeNode): void {
    const random = this.prng.fork();
    n.incarnation++;
    n.incarnationId = `node${n.id}-incarnation${n.incarnation}`;
    n.restartAtTick = undefined;
    n.image = new MetadataImage();
    n.appliedIndex = 0;
    n.controller = undefined;
    n.activeTerm = -1;
    n.activationIndex = Number.POSITIVE_INFINITY;
    n.brokerEpoch = -1;
    n.fenced = true;
    n.lifecycleBusy = false;
    n.nextLifecycleTick = this.tick;
    // The bug: no waiting for the catch-up, every replayed delta reaches the replicas.
    n.caughtUp = this.options.bug === 'replicas-follow-replayed-metadata';
    n.raft = new RaftNode(
      {
        id: n.id,
        voters: this.voters,
        electionTimeoutTicks: ELECTION_TICKS,
        heartbeatTicks: RAFT_HEARTBEAT_TICKS,
        random: () => random.next(),
        unsafe: this.raftUnsafe,
      },
      n.disk.durableState(),
    );
    this.drain(n);
  }

  crash(n: WholeNode, downTicks: number): void {
    if (n.raft === undefined) return;
    const raftLost = n.disk.crash(this.diskPrng);
    let batchesLost = 0;
    for (const s of n.logs.values()) {
      const unflushed = s.log.batchList.filter((b) => b.lastOffset >= s.log.flushedOffset).length;
      const survive = this.diskPrng.chance(0.3) ? this.diskPrng.int(0, unflushed) : 0;
      batchesLost += s.log.crash(survive);
      s.flushes = [];
      s.truncationsSeen = s.log.truncationsCount;
    }
    n.raft = undefined;
    n.controller = undefined;
    n.ops = [];
    n.opInFlight = undefined;
    n.controllerTickRunning = false;
    n.calls.clear();
    n.replicas.clear();
    n.produces.clear();
    n.restartAtTick = this.tick + downTicks;
    n.pausedUntilTick = undefined;
    n.inbox = [];
    this.stats.crashes++;
    this.log(
      `crash node ${n.id}: ${raftLost} unsynced Raft writes and ${batchesLost} unflushed batches lost, restart at ${n.restartAtTick}`,
    );
    this.checker.afterCrash(this.nodes, n.id);
  }

  restart(n: WholeNode): void {
    if (n.raft !== undefined) return;
    this.start(n);
    const r = n.raft!;
    const logs = [...n.logs].map(([k, s]) => `${k}:${s.log.logEndOffset}`).join(' ');
    this.log(
      `restart node ${n.id} (incarnation ${n.incarnation}): term ${r.term}, Raft log ${r.log.snapshotIndex}..${r.log.lastIndex}, replica logs ${logs || '-'}`,
    );
  }

  // ---- Raft and the metadata image (MetadataQuorum) --------------------------------------------------

  /** Hands everything Raft has ready to the disk, the network, the image and the controller seat. */
  private drain(n: WholeNode): void {
    for (let rounds = 0; n.raft?.hasReady(); rounds++) {
      if (rounds > 1000) throw new Error(`node ${n.id}: ready() does not settle`);
      const raft = n.raft;
      const rd = raft.ready();
      if (rd.persist !== undefined) {
        n.disk.submit(rd.persist, this.tick + this.diskPrng.int(0, this.profile.fsyncTicksMax));
      }
      for (const m of rd.messages) this.send({ kind: 'raft', from: m.from, to: m.to, body: m }, true);
      if (rd.snapshot !== undefined) {
        this.loadSnapshot(n, rd.snapshot);
        // As RaftDriver: a proposal the snapshot covers cannot be told apart from another's.
        const f = n.opInFlight;
        if (f !== undefined && f.index <= rd.snapshot.index) {
          n.opInFlight = undefined;
          f.op.fail(ErrorCode.NOT_CONTROLLER);
        }
      }
      for (const e of rd.committed) this.applyEntry(n, e);
      if (rd.leaderChange !== undefined) {
        const c = rd.leaderChange;
        this.log(`node ${n.id}: raft ${c.role}, term ${c.term}, leader ${c.leaderId ?? '-'}`);
        if (c.role === 'leader' && c.leaderId === n.id) {
          this.stats.raftLeaderTermMax = Math.max(this.stats.raftLeaderTermMax, c.term);
          n.activeTerm = c.term;
          n.activationIndex = raft.log.lastIndex;
          n.controller = undefined;
        } else {
          if (n.controller !== undefined) this.log(`node ${n.id}: controller inactive`);
          n.controller = undefined;
          n.activationIndex = Number.POSITIVE_INFINITY;
        }
        const f = n.opInFlight;
        if (f !== undefined && (c.role !== 'leader' || f.term !== c.term)) {
          n.opInFlight = undefined;
          f.op.fail(ErrorCode.NOT_CONTROLLER);
        }
      }
    }
  }

  private applyEntry(n: WholeNode, e: LogEntry): void {
    this.checker.onApply(n, e, this.tick);
    n.appliedIndex = e.index;
    if (e.kind === 'data') {
      const records = decodeMetadataBatch(Buffer.from(e.data));
      const delta = n.image.apply(records, e.index);
      this.applyDelta(n, delta);
    }
    const f = n.opInFlight;
    if (f !== undefined && f.index === e.index) {
      n.opInFlight = undefined;
      if (f.term === e.term) f.finish(n.image);
      else f.op.fail(ErrorCode.NOT_CONTROLLER);
    }
  }

  private loadSnapshot(n: WholeNode, s: Snapshot): void {
    this.checker.onSnapshotLoaded(n, s.index, this.tick);
    n.image = MetadataImage.fromRecords(decodeMetadataBatch(Buffer.from(s.data)), s.index);
    n.appliedIndex = s.index;
    // Rebuilt over the new image by the next controller tick if still leader (MetadataQuorum).
    n.controller = undefined;
    this.log(`node ${n.id}: loaded metadata snapshot at ${s.index}`);
    if (!n.caughtUp) return;
    for (const t of n.image.topics()) for (const p of t.partitions) this.applyPartition(n, p);
  }

  private compactMaybe(n: WholeNode): void {
    const every = this.profile.compactEveryEntries;
    const r = n.raft;
    if (every === undefined || r === undefined) return;
    if (n.appliedIndex - r.log.snapshotIndex < every) return;
    if (r.compact(n.appliedIndex, encodeMetadataBatch(n.image.toRecords()))) {
      this.stats.snapshots++;
      this.log(`node ${n.id}: metadata snapshot at ${n.appliedIndex}`);
      this.drain(n);
    }
  }

  // ---- the controller seat ------------------------------------------------------------------------

  /** MetadataQuorum.tick: activate once this term's first entry is applied; periodic controller tick. */
  private controllerTick(n: WholeNode): void {
    const r = n.raft!;
    if (
      n.controller === undefined &&
      r.role === 'leader' &&
      r.term === n.activeTerm &&
      n.appliedIndex >= n.activationIndex
    ) {
      const random = this.prng.fork();
      n.controller = new Controller(n.image, this.controllerConfig, () => random.next());
      n.controller.activate(this.nowMs);
      n.lastControllerTickMs = this.nowMs;
      this.stats.controllerActivations++;
      this.log(`node ${n.id}: controller active (term ${r.term}, metadata offset ${n.image.offset})`);
    }
    if (
      n.controller !== undefined &&
      !n.controllerTickRunning &&
      this.nowMs - n.lastControllerTickMs >= CONTROLLER_TICK_MS
    ) {
      n.controllerTickRunning = true;
      n.lastControllerTickMs = this.nowMs;
      this.enqueueOp(n, {
        name: 'tick',
        decide: (c, now) => ({
          records: c.tick(now),
          finish: () => {
            n.controllerTickRunning = false;
          },
        }),
        fail: () => {
          n.controllerTickRunning = false;
        },
      });
    }
  }

  private enqueueOp(n: WholeNode, op: ControllerOp): void {
    if (n.ops.length >= CONTROLLER_OPS_MAX) {
      op.fail(ErrorCode.NOT_CONTROLLER);
      return;
    }
    n.ops.push(op);
  }

  /** Runs queued operations one at a time: decide, propose, and wait until applied (MetadataQuorum.run). */
  private pumpOps(n: WholeNode): void {
    while (n.raft !== undefined && n.opInFlight === undefined && n.ops.length > 0) {
      const op = n.ops.shift()!;
      const c = n.controller;
      if (c === undefined) {
        op.fail(ErrorCode.NOT_CONTROLLER);
        continue;
      }
      const { records, finish } = op.decide(c, this.nowMs);
      if (records.length === 0) {
        finish(n.image);
        continue;
      }
      const res = n.raft.propose(encodeMetadataBatch(records));
      if (!res.ok) {
        op.fail(ErrorCode.NOT_CONTROLLER);
        continue;
      }
      this.stats.controllerOps++;
      this.log(`node ${n.id}: controller ${op.name} proposes ${describeRecords(records)} at ${res.index}`);
      n.opInFlight = { op, index: res.index, term: res.term, finish };
      this.drain(n);
    }
  }

  /** A broker's (or the admin's) request to this node's controller. */
  private onControllerRequest(n: WholeNode, m: Extract<WireMessage, { kind: 'ctl-request' }>): void {
    const reply = (body: CtlResponse) =>
      this.send(
        {
          kind: 'ctl-response',
          from: n.id,
          to: m.from,
          toIncarnation: m.fromIncarnation,
          callId: m.callId,
          attempt: m.attempt,
          body,
        },
        true,
      );
    const b = m.body;
    switch (b.type) {
      case 'register':
        this.enqueueOp(n, {
          name: `register(${b.brokerId})`,
          decide: (c, now) => {
            const r = c.registerBroker(
              { brokerId: b.brokerId, incarnationId: b.incarnationId, host: 'sim', port: 9092, rack: null },
              now,
            );
            return {
              records: r.records,
              finish: (image) =>
                reply({
                  type: 'register',
                  errorCode: r.errorCode,
                  brokerEpoch: r.errorCode === ErrorCode.NONE ? (image.broker(b.brokerId)?.epoch ?? -1) : -1,
                }),
            };
          },
          fail: (errorCode) => reply({ type: 'register', errorCode, brokerEpoch: -1 }),
        });
        return;
      case 'heartbeat':
        this.enqueueOp(n, {
          name: `heartbeat(${b.brokerId})`,
          decide: (c, now) => {
            const r = c.heartbeat(
              {
                brokerId: b.brokerId,
                brokerEpoch: b.brokerEpoch,
                currentMetadataOffset: b.currentMetadataOffset,
                wantShutDown: false,
              },
              now,
            );
            return {
              records: r.records,
              finish: (image) =>
                reply({
                  type: 'heartbeat',
                  errorCode: r.errorCode,
                  isFenced: image.broker(b.brokerId)?.fenced ?? true,
                }),
            };
          },
          fail: (errorCode) => reply({ type: 'heartbeat', errorCode, isFenced: true }),
        });
        return;
      case 'alter': {
        const rq = b.request;
        const failed = (errorCode: ErrorCode): CtlResponse => ({
          type: 'alter',
          errorCode: ErrorCode.NONE,
          response: { errorCode, state: undefined, requestPartitionEpoch: rq.partitionEpoch },
        });
        this.enqueueOp(n, {
          name: `alterPartition(${b.brokerId}, isr [${rq.newIsr}])`,
          decide: (c) => {
            const r = c.alterPartition({
              brokerId: b.brokerId,
              brokerEpoch: b.brokerEpoch,
              topicId: b.topicId,
              partition: b.partition,
              leaderEpoch: rq.leaderEpoch,
              partitionEpoch: rq.partitionEpoch,
              newIsr: rq.newIsr,
            });
            return {
              records: r.records,
              finish: (image) => {
                if (r.errorCode !== ErrorCode.NONE) return reply(failed(r.errorCode));
                const p = image.topicById(b.topicId)?.partitions[b.partition];
                if (p === undefined) return reply(failed(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
                reply({
                  type: 'alter',
                  errorCode: ErrorCode.NONE,
                  response: {
                    errorCode: ErrorCode.NONE,
                    state: {
                      leaderId: p.leader,
                      leaderEpoch: p.leaderEpoch,
                      partitionEpoch: p.partitionEpoch,
                      isr: p.isr,
                      replicas: p.replicas,
                    },
                    requestPartitionEpoch: rq.partitionEpoch,
                  },
                });
              },
            };
          },
          fail: (errorCode) =>
            reply({
              type: 'alter',
              errorCode,
              response: { errorCode, state: undefined, requestPartitionEpoch: rq.partitionEpoch },
            }),
        });
        return;
      }
      case 'create-topics':
        this.enqueueOp(n, {
          name: 'createTopics',
          decide: (c) => {
            const r = c.createTopics(b.topics, false);
            return {
              records: r.records,
              finish: () =>
                reply({
                  type: 'create-topics',
                  errorCode: ErrorCode.NONE,
                  results: r.results.map((x) => x.errorCode),
                }),
            };
          },
          fail: (errorCode) => reply({ type: 'create-topics', errorCode, results: [] }),
        });
        return;
    }
  }

  // ---- the controller channel (ControllerChannel) --------------------------------------------------

  private call(
    n: WholeNode,
    body: CtlRequest,
    timeouts: { attemptMs: number; totalMs: number },
    onAnswer: (r: CtlResponse) => void,
    onGiveUp: () => void,
  ): void {
    const c: ChannelCall = {
      id: ++this.callSeq,
      body,
      deadlineTick: this.tick + Math.ceil(timeouts.totalMs / TICK_MS),
      attemptTicks: Math.ceil(timeouts.attemptMs / TICK_MS),
      attempt: 0,
      attemptDeadlineTick: undefined,
      retryAtTick: this.tick,
      onAnswer,
      onGiveUp,
    };
    n.calls.set(c.id, c);
    this.pumpCall(n, c);
  }

  private pumpCall(n: WholeNode, c: ChannelCall): void {
    if (c.attemptDeadlineTick !== undefined) {
      if (this.tick < c.attemptDeadlineTick) return;
      c.attemptDeadlineTick = undefined; // timed out: that connection is gone
      c.retryAtTick = this.tick;
    }
    if (this.tick < c.retryAtTick) return;
    if (this.tick >= c.deadlineTick) {
      n.calls.delete(c.id);
      c.onGiveUp();
      return;
    }
    const target = n.raft?.leaderId;
    if (target === undefined) {
      c.retryAtTick = this.tick + backoffTicks(c.attempt++);
      return;
    }
    c.attempt++;
    c.attemptDeadlineTick = this.tick + c.attemptTicks;
    this.send(
      {
        kind: 'ctl-request',
        from: n.id,
        to: target,
        fromIncarnation: n.incarnation,
        callId: c.id,
        attempt: c.attempt,
        body: c.body,
      },
      c.body.type !== 'alter',
    );
  }

  private onControllerResponse(n: WholeNode, m: Extract<WireMessage, { kind: 'ctl-response' }>): void {
    const c = n.calls.get(m.callId);
    if (c === undefined || c.attemptDeadlineTick === undefined || m.attempt !== c.attempt) return;
    c.attemptDeadlineTick = undefined;
    if (m.body.errorCode === ErrorCode.NOT_CONTROLLER) {
      c.retryAtTick = this.tick + backoffTicks(c.attempt);
      return;
    }
    n.calls.delete(c.id);
    c.onAnswer(m.body);
  }

  // ---- the broker --------------------------------------------------------------------------------

  /** BrokerLifecycle: register, then heartbeat; register again when the epoch is stale. */
  private lifecycle(n: WholeNode): void {
    if (n.lifecycleBusy || this.tick < n.nextLifecycleTick) return;
    n.lifecycleBusy = true;
    const again = () => {
      n.lifecycleBusy = false;
      const ms = n.fenced ? BROKER_HEARTBEAT_FENCED_MS : BROKER_HEARTBEAT_MS;
      n.nextLifecycleTick = this.tick + ms / TICK_MS;
    };
    if (n.brokerEpoch < 0) {
      this.call(
        n,
        { type: 'register', brokerId: n.id, incarnationId: n.incarnationId },
        CALL_TIMEOUTS.register,
        (r) => {
          if (r.type === 'register' && r.errorCode === ErrorCode.NONE && r.brokerEpoch >= 0) {
            n.brokerEpoch = r.brokerEpoch;
            this.log(`node ${n.id}: registered as broker epoch ${r.brokerEpoch}`);
          }
          again();
        },
        again,
      );
      return;
    }
    this.call(
      n,
      {
        type: 'heartbeat',
        brokerId: n.id,
        brokerEpoch: n.brokerEpoch,
        currentMetadataOffset: n.image.offset,
      },
      CALL_TIMEOUTS.heartbeat,
      (r) => {
        if (r.type === 'heartbeat') {
          if (r.errorCode === ErrorCode.STALE_BROKER_EPOCH) {
            this.log(`node ${n.id}: broker epoch ${n.brokerEpoch} is stale; registering again`);
            n.brokerEpoch = -1;
            n.fenced = true;
          } else if (r.errorCode === ErrorCode.NONE) {
            if (n.fenced !== r.isFenced)
              this.log(`node ${n.id}: broker ${r.isFenced ? 'fenced' : 'unfenced'}`);
            n.fenced = r.isFenced;
            if (!n.fenced && !n.caughtUp) this.catchUp(n);
          }
        }
        again();
      },
      again,
    );
  }

  /**
   * ReplicaManager.catchUp: the broker was unfenced, so its image has reached its registration;
   * the replicas start from the image as it is now, as one delta. Before, metadata is history (a
   * restarted broker replaying its log would act on partition states long superseded).
   */
  private catchUp(n: WholeNode): void {
    n.caughtUp = true;
    this.log(`node ${n.id}: caught up at metadata offset ${n.image.offset}; replicas follow the image`);
    for (const t of n.image.topics()) for (const p of t.partitions) this.applyPartition(n, p);
  }

  /** ReplicaManager.applyDelta: opens replicas if needed and feeds them the partition states. */
  private applyDelta(n: WholeNode, delta: MetadataDelta): void {
    if (!n.caughtUp) return;
    for (const { current } of delta.partitionsChanged) this.applyPartition(n, current);
  }

  private applyPartition(n: WholeNode, m: PartitionMeta): void {
    if (!m.replicas.includes(n.id)) return;
    const key = partitionKey(m.topic, m.partition);
    let h = n.replicas.get(key);
    if (h === undefined) {
      let store = n.logs.get(key);
      if (store === undefined) {
        const log = new MemoryReplicaLog();
        const s: PartitionStore = { log, flushes: [], truncationsSeen: 0 };
        log.onTruncate = (removed) => {
          const epoch = n.replicas.get(key)?.replica.leaderEpoch ?? -1;
          this.stats.truncations++;
          this.log(
            `node ${n.id}: ${key} truncated to ${log.logEndOffset} (${removed.length} batches, replica epoch ${epoch})`,
          );
          this.checker.onTruncate(key, n.id, removed, epoch);
        };
        n.logs.set(key, s);
        store = s;
      }
      const topic = n.image.topic(m.topic);
      const minInsyncReplicas = Number(topic?.configs['min.insync.replicas'] ?? '1');
      const replica = PartitionReplica.recover(
        { ...this.replicaConfig, brokerId: n.id, minInsyncReplicas },
        store.log,
        0,
      );
      h = { key, topicId: m.topicId, partition: m.partition, replica, store };
      n.replicas.set(key, h);
    }
    const r = h.replica;
    const wasRole = r.role;
    const wasEpoch = r.leaderEpoch;
    r.applyPartitionState(
      {
        leaderId: m.leader,
        leaderEpoch: m.leaderEpoch,
        partitionEpoch: m.partitionEpoch,
        isr: m.isr,
        replicas: m.replicas,
      },
      this.nowMs,
    );
    if (r.role !== wasRole || r.leaderEpoch !== wasEpoch) {
      this.log(
        `node ${n.id}: ${key} ${r.role} of epoch ${r.leaderEpoch} (leader ${r.leaderId}, isr [${r.isr}], LEO ${h.store.log.logEndOffset})`,
      );
    }
    this.drainReplica(n, h);
  }

  /** Schedules flushes for what the replica appended and acts on its outputs. */
  private drainReplica(n: WholeNode, h: HostedReplica): void {
    const s = h.store;
    const log = s.log;
    if (log.truncationsCount !== s.truncationsSeen) {
      // A truncation syncs what remains (as PartitionLog's does); pending flushes are moot.
      s.truncationsSeen = log.truncationsCount;
      s.flushes = [];
    }
    const leo = log.logEndOffset;
    const lastTarget = s.flushes[s.flushes.length - 1]?.upTo ?? log.flushedOffset;
    if (leo > lastTarget) {
      const at = Math.max(
        s.flushes[s.flushes.length - 1]?.atTick ?? 0,
        this.tick + this.diskPrng.int(0, this.profile.fsyncTicksMax),
      );
      s.flushes.push({ atTick: at, upTo: leo });
    }
    for (const o of h.replica.drainOutputs()) {
      if (o.type === 'alter-partition') {
        this.sendAlterPartition(n, h, o.request);
        continue;
      }
      const p = n.produces.get(o.produceId);
      if (p === undefined) continue;
      n.produces.delete(o.produceId);
      if (o.errorCode === ErrorCode.NONE) this.checker.onAcked(h.key, o.baseOffset, p.values, h.replica);
      this.send(
        {
          kind: 'produce-response',
          from: n.id,
          to: CLIENT_ID,
          requestId: p.requestId,
          errorCode: o.errorCode,
          baseOffset: o.baseOffset,
        },
        true,
      );
    }
  }

  private sendAlterPartition(n: WholeNode, h: HostedReplica, request: AlterPartitionRequest): void {
    this.log(
      `node ${n.id}: ${h.key} proposes isr [${request.newIsr}] (leader epoch ${request.leaderEpoch}, partition epoch ${request.partitionEpoch})`,
    );
    this.call(
      n,
      {
        type: 'alter',
        brokerId: n.id,
        brokerEpoch: n.brokerEpoch,
        topicId: h.topicId,
        partition: h.partition,
        request,
      },
      CALL_TIMEOUTS.alter,
      (r) => {
        if (r.type !== 'alter' || n.replicas.get(h.key) !== h) return;
        if (r.response.errorCode !== ErrorCode.NONE)
          this.log(`node ${n.id}: ${h.key} AlterPartition answered ${ErrorCode[r.response.errorCode]}`);
        h.replica.onAlterPartitionResponse(r.response, this.nowMs);
        this.drainReplica(n, h);
      },
      () => undefined, // unanswered: the replica resends after alterPartitionRetryMs
    );
  }

  private brokerTick(n: WholeNode): void {
    this.lifecycle(n);
    for (const c of [...n.calls.values()]) this.pumpCall(n, c);
    for (const h of n.replicas.values()) {
      const s = h.store;
      const r = h.replica;
      while (s.flushes.length > 0 && s.flushes[0]!.atTick <= this.tick) {
        const f = s.flushes.shift()!;
        s.log.flush(f.upTo);
        r.onFlushed();
      }
      r.tick(this.nowMs);
      const req = r.pollRequest(this.nowMs);
      if (req !== undefined) {
        this.send(
          {
            kind: 'replica-request',
            from: n.id,
            to: r.leaderId,
            fromIncarnation: n.incarnation,
            partition: h.key,
            body: req,
          },
          true,
        );
      }
      this.drainReplica(n, h);
    }
  }

  private onReplicaRequest(n: WholeNode, m: Extract<WireMessage, { kind: 'replica-request' }>): void {
    const h = n.replicas.get(m.partition);
    let body: LeaderResponse;
    if (h === undefined) {
      body =
        m.body.kind === 'fetch'
          ? {
              kind: 'fetch-response',
              correlationId: m.body.correlationId,
              errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
              highWatermark: -1,
              logStartOffset: -1,
              divergingEpoch: undefined,
              records: Buffer.alloc(0),
            }
          : {
              kind: 'offset-for-leader-epoch-response',
              correlationId: m.body.correlationId,
              errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
              leaderEpoch: -1,
              endOffset: -1,
            };
    } else {
      body =
        m.body.kind === 'fetch'
          ? h.replica.handleFetch(m.body, this.nowMs)
          : h.replica.handleOffsetForLeaderEpoch(m.body);
      this.drainReplica(n, h);
    }
    this.send(
      {
        kind: 'replica-response',
        from: n.id,
        to: m.from,
        toIncarnation: m.fromIncarnation,
        partition: m.partition,
        body,
      },
      true,
    );
  }

  private onProduce(n: WholeNode, m: Extract<WireMessage, { kind: 'produce' }>): void {
    const h = n.replicas.get(m.partition);
    const answer = (errorCode: ErrorCode, baseOffset = -1) =>
      this.send(
        { kind: 'produce-response', from: n.id, to: m.from, requestId: m.requestId, errorCode, baseOffset },
        true,
      );
    if (h === undefined) {
      answer(ErrorCode.NOT_LEADER_OR_FOLLOWER);
      return;
    }
    const produceId = ++this.produceSeq;
    const res = h.replica.appendAsLeader(
      produceId,
      valuesBatch([...m.values], this.nowMs),
      -1,
      this.nowMs,
      PRODUCE_TIMEOUT_MS,
    );
    if (res.errorCode !== ErrorCode.NONE) answer(res.errorCode);
    else if (res.pending) n.produces.set(produceId, { requestId: m.requestId, key: h.key, values: m.values });
    else {
      this.checker.onAcked(h.key, res.baseOffset, m.values, h.replica);
      answer(ErrorCode.NONE, res.baseOffset);
    }
    this.drainReplica(n, h);
  }

  // ---- the network ---------------------------------------------------------------------------------

  private send(m: WireMessage, duplicable: boolean): void {
    if (this.options.verbose) this.log(`send ${describeWire(m)}`);
    if (m.from === m.to) {
      // In-process (ControllerChannel calls its own ControllerService): no network faults.
      this.loopback.push({ atTick: this.tick + 1, message: m });
      return;
    }
    this.network.send(m, this.tick, duplicable);
  }

  private deliver(m: WireMessage): void {
    if (m.to === CLIENT_ID) {
      this.onClientMessage(m);
      return;
    }
    const n = this.node(m.to);
    if (n?.raft === undefined) return;
    if (n.pausedUntilTick !== undefined) {
      if (n.inbox.length < INBOX_MAX) n.inbox.push(m);
      return;
    }
    if (this.options.verbose) this.log(`deliver ${describeWire(m)}`);
    switch (m.kind) {
      case 'raft':
        n.raft.receive(m.body);
        this.drain(n);
        break;
      case 'ctl-request':
        this.onControllerRequest(n, m);
        break;
      case 'ctl-response':
        if (m.toIncarnation === n.incarnation) this.onControllerResponse(n, m);
        break;
      case 'replica-request':
        this.onReplicaRequest(n, m);
        break;
      case 'replica-response': {
        if (m.toIncarnation !== n.incarnation) break;
        const h = n.replicas.get(m.partition);
        if (h === undefined) break;
        h.replica.handleResponse(m.body, this.nowMs);
        this.drainReplica(n, h);
        break;
      }
      case 'produce':
        this.onProduce(n, m);
        break;
      case 'produce-response':
        break;
    }
    this.pumpOps(n);
  }

  // ---- the clients ---------------------------------------------------------------------------------

  private onClientMessage(m: WireMessage): void {
    if (m.kind === 'produce-response') {
      const p = this.clientProduces.get(m.requestId);
      if (p === undefined) return;
      this.clientProduces.delete(m.requestId);
      if (m.errorCode === ErrorCode.NONE) {
        let byOffset = this.acked.get(p.key);
        if (byOffset === undefined) {
          byOffset = new Map();
          this.acked.set(p.key, byOffset);
        }
        p.values.forEach((v, i) => byOffset.set(m.baseOffset + i, v));
        this.stats.acked++;
        this.ackedSinceHeal.set(p.key, (this.ackedSinceHeal.get(p.key) ?? 0) + 1);
      } else {
        this.stats.produceErrors++;
        this.clientLeaders.delete(p.key);
      }
      return;
    }
    if (m.kind === 'ctl-response' && this.adminCall?.id === m.callId) {
      this.adminCall = undefined;
      const b = m.body;
      if (b.type !== 'create-topics' || b.errorCode !== ErrorCode.NONE) return;
      const wanted = this.wantedTopics();
      b.results.forEach((code, i) => {
        const name = wanted[i]?.name;
        if (name !== undefined && (code === ErrorCode.NONE || code === ErrorCode.TOPIC_ALREADY_EXISTS)) {
          if (!this.topicsCreated.has(name)) this.log(`admin: topic ${name} created`);
          this.topicsCreated.add(name);
        }
      });
    }
  }

  private wantedTopics(): CreatableTopic[] {
    return this.profile.topics
      .filter((t) => !this.topicsCreated.has(t.name))
      .map((t) => ({
        name: t.name,
        numPartitions: t.partitions,
        replicationFactor: REPLICATION_FACTOR,
        configs: this.topicConfigs,
      }));
  }

  get allTopicsCreated(): boolean {
    return this.topicsCreated.size === this.profile.topics.length;
  }

  private liveNodes(): WholeNode[] {
    return this.nodes.filter((n) => n.raft !== undefined);
  }

  /** The admin: CreateTopics to the controller a random node names, until every topic exists. */
  private admin(): void {
    if (this.allTopicsCreated) return;
    if (this.adminCall !== undefined && this.tick - this.adminCall.sentTick < 50) return;
    this.adminCall = undefined;
    if (this.tick < this.nextAdminTick) return;
    this.nextAdminTick = this.tick + 20;
    const live = this.liveNodes();
    if (live.length === 0) return;
    const target = this.clientPrng.pick(live).raft!.leaderId;
    if (target === undefined) return;
    const id = ++this.callSeq;
    this.adminCall = { id, sentTick: this.tick };
    this.send(
      {
        kind: 'ctl-request',
        from: CLIENT_ID,
        to: target,
        fromIncarnation: 0,
        callId: id,
        attempt: 1,
        body: { type: 'create-topics', topics: this.wantedTopics() },
      },
      false,
    );
  }

  /** Partition keys of the topics the admin created. */
  private clientPartitions(): string[] {
    const out: string[] = [];
    for (const t of this.profile.topics) {
      if (!this.topicsCreated.has(t.name)) continue;
      for (let p = 0; p < t.partitions; p++) out.push(partitionKey(t.name, p));
    }
    return out;
  }

  /** The producer: metadata from a random node's image, acks=all to the leader it names. */
  private produce(): void {
    for (const [id, p] of this.clientProduces) {
      if (this.tick - p.sentTick >= CLIENT_PRODUCE_TIMEOUT_TICKS) {
        this.clientProduces.delete(id);
        this.stats.produceErrors++;
        this.clientLeaders.delete(p.key);
      }
    }
    const keys = this.clientPartitions();
    if (keys.length === 0) return;
    const c = this.clientPrng;
    const refresh = this.tick >= this.nextMetadataRefreshTick || keys.some((k) => !this.clientLeaders.has(k));
    if (refresh) {
      this.nextMetadataRefreshTick = this.tick + METADATA_REFRESH_TICKS;
      const live = this.liveNodes();
      if (live.length > 0) {
        const image = c.pick(live).image;
        for (const t of this.profile.topics) {
          for (let p = 0; p < t.partitions; p++) {
            const leader = image.partition(t.name, p)?.leader ?? NO_LEADER;
            const key = partitionKey(t.name, p);
            if (leader === NO_LEADER) this.clientLeaders.delete(key);
            else this.clientLeaders.set(key, leader);
          }
        }
      }
    }
    if (!this.producing || !c.chance(this.profile.produceRate)) return;
    const key = c.pick(keys);
    const leader = this.clientLeaders.get(key);
    if (leader === undefined) return;
    let inflight = 0;
    for (const p of this.clientProduces.values()) if (p.key === key) inflight++;
    if (inflight >= PRODUCES_INFLIGHT_MAX) return;
    const values = Array.from({ length: c.int(1, 3) }, () => `${key}:v${++this.valueSeq}`);
    const requestId = ++this.callSeq;
    this.clientProduces.set(requestId, { key, values, sentTick: this.tick });
    this.stats.produced++;
    this.send({ kind: 'produce', from: CLIENT_ID, to: leader, requestId, partition: key, values }, false);
  }

  // ---- faults ----------------------------------------------------------------------------------

  private faults(): void {
    const f = this.profile;
    const p = this.faultPrng;
    if (p.chance(f.crashRate)) {
      const live = this.liveNodes();
      if (live.length > 0) this.crash(p.pick(live), p.int(1, f.restartTicksMax));
    }
    if (p.chance(f.pauseRate)) {
      const running = this.liveNodes().filter((n) => n.pausedUntilTick === undefined);
      if (running.length > 0) {
        const n = p.pick(running);
        n.pausedUntilTick = this.tick + p.int(1, f.pauseTicksMax);
        this.stats.pauses++;
        this.log(`pause node ${n.id} until ${n.pausedUntilTick}`);
      }
    }
    if (this.network.partitioned) {
      if (p.chance(f.healRate)) {
        this.network.heal();
        this.log('network healed');
      }
    } else if (p.chance(f.partitionRate)) {
      this.stats.partitions++;
      const shuffled = p.shuffle(this.voters);
      if (p.chance(0.2)) {
        const a = shuffled[0]!;
        const b = shuffled[1]!;
        this.network.cutOneWay(a, b);
        this.log(`link ${a} -> ${b} cut`);
      } else {
        const cutAt = p.int(1, shuffled.length - 1);
        const groups = [shuffled.slice(0, cutAt), shuffled.slice(cutAt)];
        this.network.partition(groups);
        this.log(`partition ${groups.map((g) => `{${g.join(',')}}`).join(' ')}`);
      }
    }
  }

  /** Ends the fault phase: no loss or duplication, short delays, the network whole, every node up. */
  healAll(): void {
    this.faultsOn = false;
    this.network.heal();
    this.network.options = {
      ...this.network.options,
      dropRate: 0,
      duplicateRate: 0,
      delayTicksMax: Math.min(3, this.profile.delayTicksMax),
    };
    for (const n of this.nodes) {
      this.restart(n);
      if (n.pausedUntilTick !== undefined) n.pausedUntilTick = this.tick;
    }
    this.ackedSinceHeal = new Map();
    this.log('faults stop: network healed, all nodes up');
  }

  // ---- one step --------------------------------------------------------------------------------

  step(): void {
    this.tick++;
    if (this.faultsOn) {
      for (const n of this.nodes) {
        if (n.raft === undefined && n.restartAtTick !== undefined && n.restartAtTick <= this.tick)
          this.restart(n);
      }
      this.faults();
    }
    for (const n of this.nodes) {
      if (n.pausedUntilTick === undefined || n.pausedUntilTick > this.tick) continue;
      n.pausedUntilTick = undefined;
      const inbox = n.inbox;
      n.inbox = [];
      this.log(`node ${n.id} resumes (${inbox.length} messages waiting)`);
      for (const m of inbox) this.deliver(m);
    }
    const due = this.loopback.filter((l) => l.atTick <= this.tick);
    this.loopback = this.loopback.filter((l) => l.atTick > this.tick);
    for (const l of due) this.deliver(l.message);
    for (const m of this.network.takeDue(this.tick)) this.deliver(m);
    for (const n of this.nodes) {
      const raft = n.raft;
      if (raft === undefined || n.pausedUntilTick !== undefined) continue;
      const done = n.disk.completeDue(this.tick);
      if (done !== undefined) {
        raft.diskWritten(done);
        this.drain(n);
      }
      raft.tick();
      this.drain(n);
      this.controllerTick(n);
      this.pumpOps(n);
      this.brokerTick(n);
      this.compactMaybe(n);
      this.pumpOps(n);
    }
    this.admin();
    this.produce();
    const every = this.options.fullCheckEveryTicks ?? 25;
    this.checker.afterStep(this.tick, this.nodes, this.tick % every === 0);
    this.stats.committedIndex = this.checker.committedIndex;
    const e = this.checker.committedEvents;
    this.stats.partitionLeaderChanges = e.leaderChanges;
    this.stats.offlinePartitions = e.offlinePartitions;
    this.stats.isrChanges = e.isrChanges;
    this.stats.fencings = e.fences;
    this.stats.messagesSent = this.network.sentCount;
    this.stats.messagesDropped = this.network.droppedCount;
  }

  // ---- liveness ----------------------------------------------------------------------------------

  /** The Raft leader every live node follows, if there is one and it is the active controller. */
  agreedController(): WholeNode | undefined {
    const live = this.liveNodes();
    const leader = live.find((n) => n.raft!.role === 'leader');
    if (leader === undefined || leader.controller === undefined) return undefined;
    for (const n of live) {
      if (n.raft!.term !== leader.raft!.term || n.raft!.leaderId !== leader.id) return undefined;
    }
    return leader;
  }

  /** Why the cluster has not converged yet, or undefined once it has. */
  notConverged(): string | undefined {
    if (this.agreedController() === undefined) return 'no agreed Raft leader with an active controller';
    if (!this.allTopicsCreated) return 'topics not all created';
    const ref = this.checker.reference;
    for (const n of this.nodes) {
      const b = ref.broker(n.id);
      if (b === undefined || b.fenced) return `broker ${n.id} not registered and unfenced`;
      // Raft indexes, not image offsets: an image loaded from a snapshot taken at a noop entry has
      // the snapshot's index as its offset, one that applied the entries has the last batch's.
      if (n.appliedIndex !== this.checker.committedIndex)
        return `node ${n.id} applied index ${n.appliedIndex}, committed ${this.checker.committedIndex}`;
    }
    for (const t of ref.topics()) {
      for (const p of t.partitions) {
        const key = partitionKey(t.name, p.partition);
        const leader = this.node(p.leader);
        const lr = leader?.replicas.get(key)?.replica;
        if (lr === undefined || lr.role !== 'leader' || lr.leaderEpoch !== p.leaderEpoch)
          return `${key}: leader ${p.leader} not acting`;
        if (p.isr.length !== p.replicas.length || lr.isr.length !== p.replicas.length)
          return `${key}: isr [${p.isr}] of replicas [${p.replicas}]`;
        const leo = lr.log.logEndOffset;
        if (lr.highWatermark !== leo) return `${key}: HW ${lr.highWatermark} below LEO ${leo}`;
        for (const id of p.replicas) {
          if (this.node(id)?.logs.get(key)?.log.logEndOffset !== leo) return `${key}: replica ${id} behind`;
        }
      }
    }
    return undefined;
  }
}

function backoffTicks(attempt: number): number {
  return Math.ceil(Math.min(50 * 2 ** attempt, 500) / TICK_MS);
}

function describeRecords(records: readonly MetadataRecord[]): string {
  return records
    .map((r) => {
      switch (r.type) {
        case 'RegisterBroker':
          return `RegisterBroker(${r.brokerId})`;
        case 'FenceBroker':
        case 'UnfenceBroker':
        case 'UnregisterBroker':
          return `${r.type}(${r.brokerId}@${r.brokerEpoch})`;
        case 'Topic':
          return `Topic(${r.name})`;
        case 'Partition':
          return `Partition(${r.partitionId}: replicas [${r.replicas}] leader ${r.leader})`;
        case 'PartitionChange':
          return `PartitionChange(${r.topicId.slice(0, 6)}-${r.partitionId}:${r.leader === undefined ? '' : ` leader ${r.leader}`}${r.isr === undefined ? '' : ` isr [${r.isr}]`})`;
        default:
          return r.type;
      }
    })
    .join(' ');
}

function describeWire(m: WireMessage): string {
  switch (m.kind) {
    case 'raft':
      return describeMessage(m.body);
    case 'ctl-request':
      return `${m.body.type} ${m.from}->${m.to} call ${m.callId}/${m.attempt}`;
    case 'ctl-response':
      return `${m.body.type}-response ${m.from}->${m.to} call ${m.callId}/${m.attempt} ${ErrorCode[m.body.errorCode]}`;
    case 'replica-request':
      return `${m.body.kind} ${m.partition} ${m.from}->${m.to} epoch ${m.body.currentLeaderEpoch}${m.body.kind === 'fetch' ? ` offset ${m.body.fetchOffset}` : ''}`;
    case 'replica-response':
      return `${m.body.kind} ${m.partition} ${m.from}->${m.to} ${ErrorCode[m.body.errorCode]}`;
    case 'produce':
      return `produce ${m.partition} ${m.from}->${m.to} [${m.values.join(',')}]`;
    case 'produce-response':
      return `produce-response ${m.from}->${m.to} ${ErrorCode[m.errorCode]} at ${m.baseOffset}`;
  }
}

/** Runs one seed: the fault phase, then (unless off) the liveness phase and the end checks. */
export function runWholeClusterSim(options: WholeSimOptions): WholeSimResult {
  const prng = new Prng(options.seed);
  const profile = { ...chooseWholeProfile(prng.fork(), options.nodeCount), ...options.profile };
  options.log?.(
    `seed ${options.seed}: ${JSON.stringify(profile)}${options.bug ? ` bug ${options.bug}` : ''}`,
  );
  const sim = new WholeClusterSim(options, profile, prng);
  const faultTicks = options.faultTicks ?? 1500;
  const settleTicksMax = options.settleTicksMax ?? 3000;
  const ticksMax = options.ticksMax ?? Number.POSITIVE_INFINITY;
  const liveness = options.checkLiveness ?? options.bug === undefined;
  let violation: Violation | undefined;
  try {
    while (sim.tick < faultTicks && sim.tick < ticksMax) sim.step();
    if (sim.tick < ticksMax) {
      sim.healAll();
      const deadline = sim.tick + settleTicksMax;
      // Liveness 1: producers succeed again on every partition.
      const acksWanted = 3;
      for (;;) {
        const keys = sim.checker.reference
          .topics()
          .flatMap((t) => t.partitions.map((p) => partitionKey(t.name, p.partition)));
        const short = keys.filter((k) => (sim.ackedSinceHeal.get(k) ?? 0) < acksWanted);
        if (sim.allTopicsCreated && keys.length > 0 && short.length === 0) break;
        if (sim.tick >= deadline || sim.tick >= ticksMax) {
          if (!liveness || sim.tick >= ticksMax) break;
          throw new Violation(
            'liveness',
            `${settleTicksMax} ticks after faults stopped, partitions ${short.join(',') || '(none yet)'} have fewer than ${acksWanted} new acknowledged produces (${sim.notConverged() ?? 'converged'})`,
          );
        }
        sim.step();
      }
      // Liveness 2: with producers stopped, every partition converges (full ISR, equal logs).
      sim.producing = false;
      for (;;) {
        const why = sim.notConverged();
        if (why === undefined) break;
        if (sim.tick >= deadline || sim.tick >= ticksMax) {
          if (!liveness || sim.tick >= ticksMax) break;
          throw new Violation(
            'liveness',
            `not converged ${settleTicksMax} ticks after faults stopped: ${why}`,
          );
        }
        sim.step();
      }
      if (sim.notConverged() === undefined) {
        sim.log('converged: every partition led, full ISR, equal logs');
        sim.checker.afterStep(sim.tick, sim.nodes, true);
        sim.checker.finalCheck(sim.nodes, sim.acked);
      }
    }
  } catch (err) {
    if (err instanceof Violation) violation = err;
    else if (err instanceof Error && err.name === 'Violation' && 'property' in err) {
      // The replication checker's own Violation class: same shape, message prefixed alike.
      const property = String((err as { property: unknown }).property);
      violation = new Violation(property, err.message.slice(property.length + 2));
    } else {
      violation = new Violation(
        'exception',
        err instanceof Error ? `${err.message}\n${err.stack}` : String(err),
      );
    }
  }
  if (violation) sim.log(`VIOLATION ${violation.message}`);
  return {
    seed: options.seed,
    ok: violation === undefined,
    violation,
    ticks: sim.tick,
    profile,
    stats: sim.stats,
  };
}
