/**
 * The replication simulator: one partition, three PartitionReplicas (brokers 1..3) and a controller
 * model (node 0), driven on a simulated clock, network and disk with faults chosen by a seed.
 * `runReplicationSim({ seed })` is a pure function of its options: a seed replays exactly.
 *
 * One tick (TICK_MS of simulated time):
 *   1. faults (fault phase only): crash a broker (its log loses the unflushed tail, except a random
 *      prefix that happened to reach the disk), restart it later as a new incarnation, pause one
 *      (a slow or stopped process: it neither acts nor receives until resumed), partition or heal
 *      the network (the controller included), move the leadership (controlled failover);
 *   2. the controller fences brokers whose session expired and elects leaders;
 *   3. the network delivers the messages due (fetches, OffsetForLeaderEpoch, AlterPartition,
 *      partition states, heartbeats);
 *   4. each live broker completes its due fsyncs, ticks its replica, heartbeats, sends its
 *      follower request; the controller broadcasts changed states (and all states periodically);
 *   5. a producer appends with acks=all (min.insync.replicas=2) or acks=1 to the broker it believes
 *      leads; a consumer reads up to the HW;
 *   6. the ReplicationChecker checks every replica (fully every `fullCheckEveryTicks`, and after
 *      every crash).
 *
 * Durability model (see partition-replica.ts): a broker's log is durable up to its flushed offset;
 * fsyncs complete after a random delay; a follower reports an offset (its next fetch) only once
 * flushed and a leader counts only its flushed offset towards the HW, so acks=all is answered only
 * when every member of the (maximal) ISR has fsynced the record. acks=1 is answered after the
 * leader's write alone and may be lost.
 *
 * After the fault phase (unless disabled) faults stop, everything restarts and heals, and liveness
 * is required: new acks=all records acknowledged, then every replica back in the ISR with equal logs.
 */

import { ErrorCode } from '../../protocol/errors.js';
import { Prng } from '../../sim/prng.js';
import { decodeRecords, valuesBatch } from '../../storage/test-batches.js';
import type {
  AlterPartitionRequest,
  AlterPartitionResponse,
  FollowerRequest,
  LeaderResponse,
  PartitionState,
} from '../messages.js';
import { NO_LEADER } from '../messages.js';
import {
  type Acks,
  DEFAULT_REPLICA_CONFIG,
  PartitionReplica,
  type ReplicaConfig,
} from '../partition-replica.js';
import { MemoryReplicaLog } from '../replica-log.js';
import { type NodeView, ReplicationChecker, Violation } from './checker.js';
import { SimController } from './controller.js';
import { SimNetwork } from './network.js';

export const TICK_MS = 10;
const CONTROLLER_ID = 0;
const BROKERS = [1, 2, 3] as const;
const MIN_INSYNC_REPLICAS = 2;

export interface ReplicationSimOptions {
  readonly seed: number;
  readonly uncleanLeaderElection?: boolean;
  readonly faultTicks?: number;
  readonly settleTicksMax?: number;
  /** Stop after this many ticks (replay); liveness is not judged then. */
  readonly ticksMax?: number;
  readonly fullCheckEveryTicks?: number;
  /** Chosen by the seed when not given. */
  readonly truncation?: ReplicaConfig['truncation'];
  /** Default: on unless unclean election is on. */
  readonly checkLiveness?: boolean;
  /** Deliberate bugs handed to every replica (checker tests). */
  readonly unsafe?: ReplicaConfig['unsafe'];
  readonly log?: (line: string) => void;
}

export interface FaultProfile {
  readonly truncation: ReplicaConfig['truncation'];
  readonly delayTicksMax: number;
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly fsyncTicksMax: number;
  readonly crashRate: number;
  readonly restartTicksMax: number;
  readonly partitionRate: number;
  readonly healRate: number;
  readonly pauseRate: number;
  readonly pauseTicksMax: number;
  readonly leaderMoveRate: number;
  readonly produceRate: number;
  readonly acksAllRate: number;
  readonly consumeRate: number;
}

export interface ReplicationSimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: Violation | undefined;
  readonly ticks: number;
  readonly profile: FaultProfile;
  readonly stats: {
    acksAllAcked: number;
    acksOneAcked: number;
    produceErrors: number;
    consumedRecords: number;
    committedOffsets: number;
    crashes: number;
    pauses: number;
    partitions: number;
    leaderMoves: number;
    elections: number;
    uncleanElections: number;
    truncations: number;
    truncatedOffsets: number;
    divergingEpochAnswers: number;
    hwFallbackTruncations: number;
    isrShrinks: number;
    isrExpands: number;
  };
}

export function chooseProfile(prng: Prng, truncation: ReplicaConfig['truncation'] | undefined): FaultProfile {
  return {
    truncation: truncation ?? (prng.chance(0.5) ? 'offset-for-leader-epoch' : 'fetch-diverging-epoch'),
    delayTicksMax: prng.int(1, 5),
    dropRate: prng.pick([0, 0.01, 0.05, 0.1]),
    duplicateRate: prng.pick([0, 0.02, 0.1]),
    fsyncTicksMax: prng.int(0, 8),
    crashRate: prng.pick([0.001, 0.003, 0.006, 0.01]),
    restartTicksMax: prng.int(10, 150),
    partitionRate: prng.pick([0, 0.002, 0.005, 0.01]),
    healRate: prng.pick([0.01, 0.03, 0.1]),
    pauseRate: prng.pick([0, 0.002, 0.005, 0.01]),
    pauseTicksMax: prng.int(5, 80),
    leaderMoveRate: prng.pick([0, 0.002, 0.005, 0.02]),
    produceRate: prng.pick([0.1, 0.3, 0.7]),
    acksAllRate: prng.pick([0.5, 0.8, 1]),
    consumeRate: prng.pick([0.02, 0.1]),
  };
}

type SimMessage =
  | {
      readonly kind: 'follower-request';
      readonly from: number;
      readonly to: number;
      readonly body: FollowerRequest;
    }
  | {
      readonly kind: 'leader-response';
      readonly from: number;
      readonly to: number;
      readonly body: LeaderResponse;
    }
  | {
      readonly kind: 'alter';
      readonly from: number;
      readonly to: number;
      readonly body: AlterPartitionRequest;
    }
  | {
      readonly kind: 'alter-response';
      readonly from: number;
      readonly to: number;
      readonly brokerEpoch: number;
      readonly body: AlterPartitionResponse;
    }
  | {
      readonly kind: 'state';
      readonly from: number;
      readonly to: number;
      readonly brokerEpoch: number;
      readonly body: PartitionState;
    }
  | { readonly kind: 'heartbeat'; readonly from: number; readonly to: number; readonly incarnation: number };

interface SimBroker extends NodeView {
  readonly id: number;
  incarnation: number;
  replica: PartitionReplica | undefined;
  log: MemoryReplicaLog;
  restartAtTick: number | undefined;
  pausedUntilTick: number | undefined;
  inbox: SimMessage[];
  flushes: { atTick: number; upTo: number }[];
  truncationsSeen: number;
  hwCheckpoint: number;
  nextHeartbeatTick: number;
  /** Stats carried over from replicas of earlier incarnations. */
  retired: {
    truncations: number;
    truncatedOffsets: number;
    diverging: number;
    fallback: number;
    shrinks: number;
    expands: number;
  };
}

interface PendingProduce {
  readonly values: string[];
  readonly acks: Acks;
  readonly broker: number;
}

export class ReplicationSim {
  tick = 0;
  readonly brokers: SimBroker[];
  readonly controller: SimController;
  readonly network: SimNetwork<SimMessage>;
  readonly checker = new ReplicationChecker();
  readonly profile: FaultProfile;
  private readonly faultPrng: Prng;
  private readonly clientPrng: Prng;
  private readonly diskPrng: Prng;
  private readonly config: Omit<ReplicaConfig, 'brokerId'>;
  private faultsOn = true;
  private producing = true;
  private producerView: number = NO_LEADER;
  private produceSeq = 0;
  private readonly pending = new Map<number, PendingProduce>();
  private lastBroadcastTick = 0;
  readonly stats: ReplicationSimResult['stats'] = {
    acksAllAcked: 0,
    acksOneAcked: 0,
    produceErrors: 0,
    consumedRecords: 0,
    committedOffsets: 0,
    crashes: 0,
    pauses: 0,
    partitions: 0,
    leaderMoves: 0,
    elections: 0,
    uncleanElections: 0,
    truncations: 0,
    truncatedOffsets: 0,
    divergingEpochAnswers: 0,
    hwFallbackTruncations: 0,
    isrShrinks: 0,
    isrExpands: 0,
  };

  constructor(
    readonly options: ReplicationSimOptions,
    private readonly logLine: (line: string) => void = () => undefined,
  ) {
    const prng = new Prng(options.seed);
    this.profile = chooseProfile(prng, options.truncation);
    this.faultPrng = prng.fork();
    this.clientPrng = prng.fork();
    this.diskPrng = prng.fork();
    const p = this.profile;
    this.config = {
      ...DEFAULT_REPLICA_CONFIG,
      replicaLagTimeMaxMs: 300,
      minInsyncReplicas: MIN_INSYNC_REPLICAS,
      replicaFetchMaxBytes: 2048,
      // Above the network's delivery bound (delayTicksMax * TICK_MS): one live copy per proposal.
      alterPartitionRetryMs: 200,
      followerRequestTimeoutMs: 200,
      followerBackoffMs: 30,
      truncation: p.truncation,
      unsafe: options.unsafe,
    };
    this.network = new SimNetwork<SimMessage>(prng.fork(), {
      delayTicksMin: 1,
      delayTicksMax: p.delayTicksMax,
      dropRate: p.dropRate,
      duplicateRate: p.duplicateRate,
      inflightMax: 2000,
    });
    this.controller = new SimController(
      {
        replicas: [...BROKERS],
        sessionTimeoutMs: 500,
        uncleanLeaderElection: options.uncleanLeaderElection ?? false,
      },
      0,
    );
    this.brokers = BROKERS.map((id) => {
      const b: SimBroker = {
        id,
        incarnation: 0,
        replica: undefined,
        log: new MemoryReplicaLog(),
        restartAtTick: undefined,
        pausedUntilTick: undefined,
        inbox: [],
        flushes: [],
        truncationsSeen: 0,
        hwCheckpoint: 0,
        nextHeartbeatTick: 0,
        retired: { truncations: 0, truncatedOffsets: 0, diverging: 0, fallback: 0, shrinks: 0, expands: 0 },
      };
      this.hookLog(b);
      b.replica = PartitionReplica.recover({ ...this.config, brokerId: id }, b.log, 0);
      return b;
    });
    this.logLine(`profile ${JSON.stringify(this.profile)}`);
  }

  private get nowMs(): number {
    return this.tick * TICK_MS;
  }

  private hookLog(b: SimBroker): void {
    b.log.onTruncate = (removed) => this.checker.onTruncate(b.id, removed, b.replica?.leaderEpoch ?? -1);
  }

  private broker(id: number): SimBroker | undefined {
    return this.brokers.find((b) => b.id === id);
  }

  private isUp(b: SimBroker): boolean {
    return b.replica !== undefined && b.pausedUntilTick === undefined;
  }

  step(): void {
    this.tick++;
    if (this.faultsOn) this.injectFaults();
    this.restartDue();
    this.resumeDue();
    this.controller.tick(this.nowMs);
    this.broadcastStates();
    for (const m of this.network.takeDue(this.tick)) this.deliver(m);
    for (const b of this.brokers) if (this.isUp(b)) this.runBroker(b);
    this.broadcastStates();
    if (this.producing) this.produce();
    this.consume();
    const full = this.tick % (this.options.fullCheckEveryTicks ?? 50) === 0;
    this.checker.afterStep(this.brokers, this.controller.state.isr, full);
    this.stats.elections = this.controller.elections.length - 1;
    this.stats.uncleanElections = this.controller.uncleanElections;
  }

  // ---- faults -----------------------------------------------------------------------------------

  private injectFaults(): void {
    const p = this.profile;
    const r = this.faultPrng;
    if (r.chance(p.crashRate)) {
      const live = this.brokers.filter((b) => b.replica !== undefined);
      if (live.length > 0) this.crash(r.pick(live));
    }
    if (r.chance(p.pauseRate)) {
      const live = this.brokers.filter((b) => this.isUp(b));
      if (live.length > 0) {
        const b = r.pick(live);
        b.pausedUntilTick = this.tick + r.int(1, p.pauseTicksMax);
        this.stats.pauses++;
        this.logLine(`t${this.tick} pause broker ${b.id} until t${b.pausedUntilTick}`);
      }
    }
    if (!this.network.partitioned && r.chance(p.partitionRate)) {
      const nodes = r.shuffle([CONTROLLER_ID, ...BROKERS]);
      const cut = r.int(1, nodes.length - 1);
      const groups = [nodes.slice(0, cut), nodes.slice(cut)];
      this.network.partition(groups);
      this.stats.partitions++;
      this.logLine(`t${this.tick} partition ${JSON.stringify(groups)}`);
    } else if (this.network.partitioned && r.chance(p.healRate)) {
      this.network.heal();
      this.logLine(`t${this.tick} heal`);
    }
    if (r.chance(p.leaderMoveRate)) {
      const s = this.controller.state;
      const candidates = s.isr.filter((id) => id !== s.leaderId && !this.controller.isFenced(id));
      if (candidates.length > 0) {
        const target = r.pick(candidates);
        if (this.controller.moveLeader(target)) {
          this.stats.leaderMoves++;
          this.logLine(
            `t${this.tick} controller moves leadership to ${target} (epoch ${this.controller.state.leaderEpoch})`,
          );
        }
      }
    }
  }

  private crash(b: SimBroker): void {
    const unflushed = b.log.batchList.filter((x) => x.lastOffset >= b.log.flushedOffset).length;
    const survive = this.diskPrng.chance(0.3) ? this.diskPrng.int(0, unflushed) : 0;
    this.retire(b);
    const lost = b.log.crash(survive);
    b.replica = undefined;
    b.pausedUntilTick = undefined;
    b.inbox = [];
    b.flushes = [];
    b.restartAtTick = this.tick + this.faultPrng.int(5, this.profile.restartTicksMax);
    this.network.dropNode(b.id);
    for (const [id, pp] of this.pending) if (pp.broker === b.id) this.pending.delete(id);
    this.stats.crashes++;
    this.logLine(
      `t${this.tick} crash broker ${b.id}: lost ${lost} unflushed batches, LEO now ${b.log.logEndOffset}`,
    );
    this.checker.checkDurability(this.brokers, this.controller.state.isr, `after crash of ${b.id}`);
  }

  private retire(b: SimBroker): void {
    const s = b.replica?.stats;
    if (s === undefined) return;
    b.retired.truncations += s.truncations;
    b.retired.truncatedOffsets += s.truncatedOffsets;
    b.retired.diverging += s.divergingEpochAnswers;
    b.retired.fallback += s.hwFallbackTruncations;
    b.retired.shrinks += s.isrShrinkProposals;
    b.retired.expands += s.isrExpandProposals;
  }

  private restart(b: SimBroker): void {
    b.incarnation++;
    b.restartAtTick = undefined;
    b.truncationsSeen = b.log.truncationsCount;
    b.replica = PartitionReplica.recover(
      { ...this.config, brokerId: b.id },
      b.log,
      Math.min(b.hwCheckpoint, b.log.logEndOffset),
    );
    b.nextHeartbeatTick = this.tick;
    this.logLine(
      `t${this.tick} restart broker ${b.id} (incarnation ${b.incarnation}, LEO ${b.log.logEndOffset})`,
    );
  }

  private restartDue(): void {
    for (const b of this.brokers)
      if (b.restartAtTick !== undefined && b.restartAtTick <= this.tick) this.restart(b);
  }

  private resumeDue(): void {
    for (const b of this.brokers) {
      if (b.pausedUntilTick !== undefined && b.pausedUntilTick <= this.tick) {
        b.pausedUntilTick = undefined;
        const inbox = b.inbox;
        b.inbox = [];
        for (const m of inbox) this.deliver(m);
      }
    }
  }

  /** Faults stop: heal, resume, restart everything. */
  endFaults(): void {
    this.faultsOn = false;
    this.network.heal();
    for (const b of this.brokers) {
      if (b.replica === undefined) this.restart(b);
      b.pausedUntilTick = Math.min(b.pausedUntilTick ?? this.tick, this.tick);
    }
    this.resumeDue();
    this.logLine(`t${this.tick} faults end`);
  }

  // ---- messages ---------------------------------------------------------------------------------

  private deliver(m: SimMessage): void {
    if (m.to === CONTROLLER_ID) {
      if (m.kind === 'heartbeat') this.controller.onHeartbeat(m.from, m.incarnation, this.nowMs);
      else if (m.kind === 'alter') {
        const body = this.controller.onAlterPartition(m.body);
        const brokerEpoch = this.controller.incarnationOf(m.from) ?? -1;
        this.network.send(
          { kind: 'alter-response', from: CONTROLLER_ID, to: m.from, brokerEpoch, body },
          this.tick,
          false,
        );
      }
      return;
    }
    const b = this.broker(m.to);
    if (b === undefined || b.replica === undefined) return;
    if (b.pausedUntilTick !== undefined) {
      b.inbox.push(m);
      return;
    }
    const r = b.replica;
    switch (m.kind) {
      case 'state':
        if (m.brokerEpoch === b.incarnation) r.applyPartitionState(m.body, this.nowMs);
        break;
      case 'alter-response':
        if (m.brokerEpoch === b.incarnation) r.onAlterPartitionResponse(m.body, this.nowMs);
        break;
      case 'follower-request': {
        const body =
          m.body.kind === 'fetch' ? r.handleFetch(m.body, this.nowMs) : r.handleOffsetForLeaderEpoch(m.body);
        this.network.send({ kind: 'leader-response', from: b.id, to: m.from, body }, this.tick, true);
        break;
      }
      case 'leader-response':
        r.handleResponse(m.body, this.nowMs);
        break;
      default:
        break;
    }
    this.drain(b);
  }

  private broadcastStates(): void {
    const periodic = this.tick - this.lastBroadcastTick >= 20;
    if (!this.controller.changed && !periodic) return;
    if (this.controller.changed) {
      const s = this.controller.state;
      this.logLine(
        `t${this.tick} controller: leader ${s.leaderId} epoch ${s.leaderEpoch} partitionEpoch ${s.partitionEpoch} isr [${s.isr}]`,
      );
      this.checker.checkDurability(
        this.brokers,
        s.isr,
        `after change to partition epoch ${s.partitionEpoch}`,
      );
    }
    this.controller.changed = false;
    this.lastBroadcastTick = this.tick;
    for (const id of BROKERS) {
      const brokerEpoch = this.controller.incarnationOf(id) ?? -1;
      this.network.send(
        { kind: 'state', from: CONTROLLER_ID, to: id, brokerEpoch, body: this.controller.state },
        this.tick,
        true,
      );
    }
  }

  // ---- brokers ----------------------------------------------------------------------------------

  private runBroker(b: SimBroker): void {
    const r = b.replica!;
    while (b.flushes.length > 0 && b.flushes[0]!.atTick <= this.tick) {
      const f = b.flushes.shift()!;
      b.log.flush(f.upTo);
      b.hwCheckpoint = r.highWatermark;
      r.onFlushed();
    }
    r.tick(this.nowMs);
    if (b.nextHeartbeatTick <= this.tick) {
      b.nextHeartbeatTick = this.tick + 10;
      this.network.send(
        { kind: 'heartbeat', from: b.id, to: CONTROLLER_ID, incarnation: b.incarnation },
        this.tick,
        false,
      );
    }
    const req = r.pollRequest(this.nowMs);
    if (req !== undefined) {
      this.network.send({ kind: 'follower-request', from: b.id, to: r.leaderId, body: req }, this.tick, true);
    }
    this.drain(b);
  }

  /** Takes the replica's outputs and schedules fsyncs for what it appended. */
  private drain(b: SimBroker): void {
    const r = b.replica;
    if (r === undefined) return;
    if (b.log.truncationsCount !== b.truncationsSeen) {
      // A truncation syncs what remains (as PartitionLog's does); pending fsyncs are moot.
      b.truncationsSeen = b.log.truncationsCount;
      b.flushes = [];
    }
    const leo = b.log.logEndOffset;
    const lastTarget = b.flushes[b.flushes.length - 1]?.upTo ?? b.log.flushedOffset;
    if (leo > lastTarget) {
      const at = Math.max(
        b.flushes[b.flushes.length - 1]?.atTick ?? 0,
        this.tick + this.diskPrng.int(0, this.profile.fsyncTicksMax),
      );
      b.flushes.push({ atTick: at, upTo: leo });
    }
    for (const o of r.drainOutputs()) {
      if (o.type === 'alter-partition') {
        this.network.send(
          { kind: 'alter', from: b.id, to: CONTROLLER_ID, body: o.request },
          this.tick,
          false,
        );
        continue;
      }
      const pp = this.pending.get(o.produceId);
      if (pp === undefined) continue;
      this.pending.delete(o.produceId);
      if (o.errorCode === ErrorCode.NONE) {
        this.stats.acksAllAcked++;
        this.checker.onAcked(o.baseOffset, pp.values, r);
      } else {
        this.stats.produceErrors++;
        this.producerView = NO_LEADER;
      }
    }
  }

  // ---- clients ----------------------------------------------------------------------------------

  private produce(): void {
    const c = this.clientPrng;
    if (!c.chance(this.profile.produceRate)) return;
    if (this.producerView === NO_LEADER || c.chance(0.1)) this.producerView = this.controller.state.leaderId;
    const b = this.broker(this.producerView);
    if (b === undefined || !this.isUp(b)) {
      this.producerView = NO_LEADER;
      return;
    }
    const r = b.replica!;
    const id = ++this.produceSeq;
    const values = Array.from({ length: c.int(1, 3) }, (_, i) => `p${id}.${i}`);
    const acks: Acks = c.chance(this.profile.acksAllRate) ? -1 : 1;
    const res = r.appendAsLeader(id, valuesBatch(values, this.nowMs), acks, this.nowMs, 1000);
    if (res.errorCode !== ErrorCode.NONE) {
      this.stats.produceErrors++;
      this.producerView = NO_LEADER;
    } else if (res.pending) {
      this.pending.set(id, { values, acks, broker: b.id });
    } else if (acks === 1) {
      this.stats.acksOneAcked++;
    }
    this.drain(b);
  }

  private consume(): void {
    const c = this.clientPrng;
    if (!c.chance(this.profile.consumeRate)) return;
    const b = this.broker(this.controller.state.leaderId);
    if (b === undefined || !this.isUp(b)) return;
    const r = b.replica!;
    const offset = c.int(0, r.highWatermark);
    const res = r.readCommitted(offset, 1024);
    if (res.errorCode !== ErrorCode.NONE) return;
    for (const rec of decodeRecords(res.records)) {
      if (rec.offset >= res.highWatermark) {
        throw new Violation(
          'consumer-read-past-hw',
          `broker ${b.id} served offset ${rec.offset} with HW ${res.highWatermark}`,
        );
      }
      this.stats.consumedRecords++;
      this.checker.onConsumed(rec.offset, rec.value?.toString('utf8') ?? '');
    }
  }

  // ---- liveness -----------------------------------------------------------------------------------

  /** All three replicas in the confirmed ISR of one leader, with equal logs and HW at the end. */
  converged(): boolean {
    const s = this.controller.state;
    const leader = this.broker(s.leaderId);
    const lr = leader?.replica;
    if (lr === undefined || lr.role !== 'leader' || lr.leaderEpoch !== s.leaderEpoch) return false;
    if (s.isr.length !== BROKERS.length || lr.isr.length !== BROKERS.length) return false;
    const leo = leader!.log.logEndOffset;
    if (lr.highWatermark !== leo) return false;
    return this.brokers.every((b) => b.replica !== undefined && b.log.logEndOffset === leo);
  }

  collectStats(): void {
    const t = { truncations: 0, truncatedOffsets: 0, diverging: 0, fallback: 0, shrinks: 0, expands: 0 };
    for (const b of this.brokers) {
      const s = b.replica?.stats;
      t.truncations += b.retired.truncations + (s?.truncations ?? 0);
      t.truncatedOffsets += b.retired.truncatedOffsets + (s?.truncatedOffsets ?? 0);
      t.diverging += b.retired.diverging + (s?.divergingEpochAnswers ?? 0);
      t.fallback += b.retired.fallback + (s?.hwFallbackTruncations ?? 0);
      t.shrinks += b.retired.shrinks + (s?.isrShrinkProposals ?? 0);
      t.expands += b.retired.expands + (s?.isrExpandProposals ?? 0);
    }
    this.stats.truncations = t.truncations;
    this.stats.truncatedOffsets = t.truncatedOffsets;
    this.stats.divergingEpochAnswers = t.diverging;
    this.stats.hwFallbackTruncations = t.fallback;
    this.stats.isrShrinks = t.shrinks;
    this.stats.isrExpands = t.expands;
    this.stats.committedOffsets = this.checker.committed.length;
  }

  stopProducing(): void {
    this.producing = false;
  }
}

export function runReplicationSim(options: ReplicationSimOptions): ReplicationSimResult {
  const sim = new ReplicationSim(options, options.log);
  const faultTicks = options.faultTicks ?? 1500;
  const settleTicksMax = options.settleTicksMax ?? 1500;
  const liveness = options.checkLiveness ?? !(options.uncleanLeaderElection ?? false);
  let violation: Violation | undefined;
  const finish = (): ReplicationSimResult => {
    sim.collectStats();
    return {
      seed: options.seed,
      ok: violation === undefined,
      violation,
      ticks: sim.tick,
      profile: sim.profile,
      stats: sim.stats,
    };
  };
  try {
    const ticksMax = options.ticksMax ?? Number.POSITIVE_INFINITY;
    while (sim.tick < faultTicks && sim.tick < ticksMax) sim.step();
    if (!liveness || sim.tick >= ticksMax) return finish();
    sim.endFaults();
    const ackedBefore = sim.stats.acksAllAcked;
    const deadline = sim.tick + settleTicksMax;
    while (sim.stats.acksAllAcked < ackedBefore + 5) {
      if (sim.tick >= deadline) {
        throw new Violation(
          'liveness',
          `only ${sim.stats.acksAllAcked - ackedBefore} acks=all acknowledged in ${settleTicksMax} ticks after faults ended`,
        );
      }
      sim.step();
    }
    sim.stopProducing();
    while (!sim.converged()) {
      if (sim.tick >= deadline)
        throw new Violation(
          'liveness',
          `replicas did not converge within ${settleTicksMax} ticks after faults ended`,
        );
      sim.step();
    }
    sim.checker.checkDurability(sim.brokers, sim.controller.state.isr, 'at the end');
  } catch (err) {
    // A replica throwing (a broken assertion inside it) is a finding too: report it with the seed.
    violation =
      err instanceof Violation ? err : new Violation('exception', (err as Error).stack ?? String(err));
  }
  return finish();
}
