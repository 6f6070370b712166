/**
 * The deterministic cluster simulator: RaftNodes driven on a simulated clock, network and disk,
 * with faults chosen by a seed. `runSimulation({ seed })` is a pure function of its options: the
 * same seed replays the same run, step for step.
 *
 * One tick of simulated time:
 *   1. the fault schedule may partition or heal the network, crash or restart a node;
 *   2. the client may propose a payload to the node it believes leads;
 *   3. the network delivers the messages due, each followed by draining that node's Ready;
 *   4. each disk completes the writes due (write + fsync) and tells its node (diskWritten);
 *   5. every live node ticks; state machines may compact their logs into snapshots;
 *   6. the SafetyChecker checks every node (fully every `fullCheckEveryTicks`).
 *
 * A run has two phases. During the fault phase the network drops, duplicates and delays
 * messages and nodes crash (losing their unsynced writes). Then faults stop: the network heals,
 * crashed nodes restart, and liveness is required — a leader every node agrees on within
 * `settleTicksMax`, then `livenessProposals` new proposals applied on every node within
 * `commitTicksMax`. Finally every proposal the client saw acknowledged must be in every node's
 * log or snapshot.
 */

import { type LogEntry, type NodeId, type RaftConfig, RaftNode, type Snapshot } from '../raft/raft.js';
import { type NodeView, SafetyChecker, Violation } from './checker.js';
import { SimDisk } from './disk.js';
import { SimNetwork } from './network.js';
import { Prng } from './prng.js';

export interface SimOptions {
  readonly seed: number;
  /** 3 or 5 by default, chosen by the seed. */
  readonly nodeCount?: number;
  readonly faultTicks?: number;
  readonly settleTicksMax?: number;
  readonly commitTicksMax?: number;
  readonly livenessProposals?: number;
  /** Stop after this many ticks (for replay); liveness is not judged then. */
  readonly ticksMax?: number;
  readonly fullCheckEveryTicks?: number;
  /** Deliberate bugs handed to every node (checker tests). */
  readonly unsafe?: RaftConfig['unsafe'];
  /** Off: skip the quorum-durability check (to see where a durability bug ends up). */
  readonly checkDurability?: boolean;
  /** Passed to every node; 1 makes replication entry-by-entry, which exposes more interleavings. */
  readonly appendEntriesMax?: number;
  /** Event log; with `verbose`, every message delivery too. */
  readonly log?: (line: string) => void;
  readonly verbose?: boolean;
}

/** The fault profile a seed picks. */
export interface FaultProfile {
  readonly nodeCount: number;
  readonly delayTicksMax: number;
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly fsyncTicksMax: number;
  readonly crashRate: number;
  readonly restartTicksMax: number;
  readonly partitionRate: number;
  readonly healRate: number;
  readonly proposeRate: number;
  readonly compactEveryEntries: number | undefined;
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: Violation | undefined;
  readonly ticks: number;
  readonly profile: FaultProfile;
  readonly stats: {
    readonly committedIndexMax: number;
    readonly proposalsAcked: number;
    readonly leaderTermMax: number;
    readonly crashes: number;
    readonly partitions: number;
    readonly messagesSent: number;
    readonly messagesDropped: number;
    readonly snapshotsTaken: number;
  };
}

const ELECTION_TICKS = { min: 10, max: 20 };
const HEARTBEAT_TICKS = 3;

export function chooseProfile(prng: Prng, nodeCount: number | undefined): FaultProfile {
  return {
    nodeCount: nodeCount ?? (prng.chance(0.5) ? 3 : 5),
    delayTicksMax: prng.int(1, 8),
    dropRate: prng.pick([0, 0.02, 0.05, 0.1, 0.2]),
    duplicateRate: prng.pick([0, 0.02, 0.1]),
    fsyncTicksMax: prng.int(0, 6),
    crashRate: prng.pick([0, 0.002, 0.005, 0.01]),
    restartTicksMax: prng.int(5, 100),
    partitionRate: prng.pick([0, 0.005, 0.01, 0.02]),
    healRate: prng.pick([0.01, 0.03, 0.1]),
    proposeRate: prng.pick([0.05, 0.2, 0.5]),
    compactEveryEntries: prng.chance(0.6) ? prng.int(5, 60) : undefined,
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface SimNodeState extends NodeView {
  raft: RaftNode | undefined;
  incarnation: number;
  restartAtTick: number | undefined;
  /** The state machine: payloads of applied data entries, in order, and the last applied index. */
  payloads: string[];
  appliedIndex: number;
}

interface Proposal {
  readonly payload: string;
  readonly node: NodeId;
  readonly incarnation: number;
  readonly index: number;
  readonly term: number;
  readonly tick: number;
}

export class SimCluster {
  readonly nodes: SimNodeState[] = [];
  readonly network: SimNetwork;
  readonly checker: SafetyChecker;
  tick = 0;
  private readonly prng: Prng;
  private readonly faultPrng: Prng;
  private readonly clientPrng: Prng;
  private readonly diskPrng: Prng;
  private readonly voters: NodeId[];
  private proposalSeq = 0;
  private knownLeader: NodeId | undefined;
  /** Accepted proposals not yet seen applied by the accepting node, by payload. */
  private readonly pending = new Map<string, Proposal>();
  readonly acked = new Map<string, Proposal>();
  crashes = 0;
  partitions = 0;
  snapshotsTaken = 0;
  leaderTermMax = 0;

  constructor(
    readonly options: SimOptions,
    readonly profile: FaultProfile,
    prng: Prng,
  ) {
    this.prng = prng;
    this.faultPrng = prng.fork();
    this.clientPrng = prng.fork();
    this.diskPrng = prng.fork();
    this.network = new SimNetwork(prng.fork(), {
      delayTicksMin: 1,
      delayTicksMax: profile.delayTicksMax,
      dropRate: profile.dropRate,
      duplicateRate: profile.duplicateRate,
      inflightMax: 10_000,
    });
    this.checker = new SafetyChecker(profile.nodeCount, options.checkDurability ?? true);
    this.voters = Array.from({ length: profile.nodeCount }, (_, i) => i + 1);
    for (const id of this.voters) {
      const node: SimNodeState = {
        id,
        raft: undefined,
        disk: new SimDisk(),
        incarnation: 0,
        restartAtTick: undefined,
        payloads: [],
        appliedIndex: 0,
      };
      this.nodes.push(node);
      this.start(node);
    }
  }

  private log(line: string): void {
    this.options.log?.(`[${String(this.tick).padStart(5)}] ${line}`);
  }

  private start(node: SimNodeState): void {
    const random = this.prng.fork();
    node.incarnation++;
    node.restartAtTick = undefined;
    node.payloads = [];
    node.appliedIndex = 0;
    node.raft = new RaftNode(
      {
        id: node.id,
        voters: this.voters,
        electionTimeoutTicks: ELECTION_TICKS,
        heartbeatTicks: HEARTBEAT_TICKS,
        random: () => random.next(),
        unsafe: this.options.unsafe,
        appendEntriesMax: this.options.appendEntriesMax,
      },
      node.disk.durableState(),
    );
    this.drain(node);
  }

  crash(node: SimNodeState, downTicks: number): void {
    if (node.raft === undefined) return;
    node.raft = undefined;
    const lost = node.disk.crash(this.diskPrng);
    node.restartAtTick = this.tick + downTicks;
    this.crashes++;
    this.log(`crash node ${node.id} (${lost} unsynced writes lost), restart at ${node.restartAtTick}`);
    this.checker.afterCrash(this.nodes);
  }

  restart(node: SimNodeState): void {
    if (node.raft !== undefined) return;
    this.start(node);
    const r = node.raft!;
    this.log(`restart node ${node.id}: term ${r.term}, log ${r.log.snapshotIndex}..${r.log.lastIndex}`);
  }

  /** Hands everything a node has ready to the disk, network, state machine and checker. */
  private drain(node: SimNodeState): void {
    for (let rounds = 0; node.raft?.hasReady(); rounds++) {
      if (rounds > 1000) throw new Error(`node ${node.id}: ready() does not settle`);
      const raft = node.raft;
      const rd = raft.ready();
      if (rd.leaderChange !== undefined) {
        const c = rd.leaderChange;
        this.log(`node ${node.id}: ${c.role}, term ${c.term}, leader ${c.leaderId ?? '-'}`);
        if (c.role === 'leader') this.leaderTermMax = Math.max(this.leaderTermMax, c.term);
      }
      if (rd.persist !== undefined) {
        node.disk.submit(rd.persist, this.tick + this.diskPrng.int(0, this.profile.fsyncTicksMax));
      }
      for (const m of rd.messages) {
        if (this.options.verbose) this.log(`send ${describeMessage(m)}`);
        this.network.send(m, this.tick);
      }
      if (rd.snapshot !== undefined) this.loadSnapshot(node, rd.snapshot);
      for (const e of rd.committed) this.apply(node, e);
    }
  }

  private loadSnapshot(node: SimNodeState, s: Snapshot): void {
    node.payloads = JSON.parse(decoder.decode(s.data)) as string[];
    node.appliedIndex = s.index;
    this.checker.onSnapshotLoaded(node, s.index, this.tick);
  }

  private apply(node: SimNodeState, e: LogEntry): void {
    this.checker.onApply(node, e, this.tick);
    node.appliedIndex = e.index;
    if (e.kind !== 'data') return;
    const payload = decoder.decode(e.data);
    node.payloads.push(payload);
    const p = this.pending.get(payload);
    if (p !== undefined && p.node === node.id && p.incarnation === node.incarnation) {
      if (p.index !== e.index || p.term !== e.term) {
        throw new Violation(
          'client',
          `payload ${payload} proposed at ${p.index}/${p.term}, applied at ${e.index}/${e.term}`,
        );
      }
      this.pending.delete(payload);
      this.acked.set(payload, p);
    }
  }

  /** The client tries one proposal: to the leader it knows, else to a random live node. */
  propose(): Proposal | undefined {
    const live = this.nodes.filter((n) => n.raft !== undefined);
    if (live.length === 0) return undefined;
    let target = live.find((n) => n.id === this.knownLeader);
    if (target === undefined) target = this.clientPrng.pick(live);
    const payload = `p${this.proposalSeq++}`;
    const res = target.raft!.propose(encoder.encode(payload));
    if (!res.ok) {
      this.knownLeader = res.leaderId;
      this.drain(target);
      return undefined;
    }
    this.knownLeader = target.id;
    const p: Proposal = {
      payload,
      node: target.id,
      incarnation: target.incarnation,
      index: res.index,
      term: res.term,
      tick: this.tick,
    };
    this.pending.set(payload, p);
    this.log(`propose ${payload} at node ${target.id}: index ${res.index}, term ${res.term}`);
    this.drain(target);
    return p;
  }

  private compactMaybe(node: SimNodeState): void {
    const every = this.profile.compactEveryEntries;
    const r = node.raft;
    if (every === undefined || r === undefined) return;
    if (node.appliedIndex - r.log.snapshotIndex < every) return;
    const data = encoder.encode(JSON.stringify(node.payloads));
    if (r.compact(node.appliedIndex, data)) {
      this.snapshotsTaken++;
      this.log(`node ${node.id}: snapshot at ${node.appliedIndex}`);
      this.drain(node);
    }
  }

  private faults(): void {
    const f = this.profile;
    const p = this.faultPrng;
    for (const n of this.nodes) {
      if (n.raft === undefined && n.restartAtTick !== undefined && n.restartAtTick <= this.tick)
        this.restart(n);
    }
    if (p.chance(f.crashRate)) {
      const victim = p.pick(this.nodes);
      this.crash(victim, p.int(1, f.restartTicksMax));
    }
    if (this.network.partitioned) {
      if (p.chance(f.healRate)) {
        this.network.heal();
        this.log('network healed');
      }
    } else if (p.chance(f.partitionRate)) {
      this.partitions++;
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

  /** One tick of simulated time; `faulty` turns the fault schedule on. */
  step(faulty: boolean, proposeRate: number): void {
    this.tick++;
    if (faulty) this.faults();
    if (this.clientPrng.chance(proposeRate)) this.propose();
    for (const m of this.network.takeDue(this.tick)) {
      const node = this.nodes[m.to - 1];
      if (node?.raft === undefined) continue;
      if (this.options.verbose) this.log(`deliver ${describeMessage(m)}`);
      node.raft.receive(m);
      this.drain(node);
    }
    for (const node of this.nodes) {
      const done = node.disk.completeDue(this.tick);
      if (node.raft !== undefined && done !== undefined) {
        node.raft.diskWritten(done);
        this.drain(node);
      }
    }
    for (const node of this.nodes) {
      if (node.raft === undefined) continue;
      node.raft.tick();
      this.drain(node);
      this.compactMaybe(node);
    }
    const every = this.options.fullCheckEveryTicks ?? 32;
    this.checker.afterStep(this.tick, this.nodes, this.tick % every === 0);
  }

  /** Ends the fault phase: no more loss or duplication, short delays, every node up. */
  healAll(): void {
    this.network.heal();
    this.network.options = {
      ...this.network.options,
      dropRate: 0,
      duplicateRate: 0,
      delayTicksMax: Math.min(3, this.profile.delayTicksMax),
    };
    for (const n of this.nodes) this.restart(n);
    this.log('faults stop: network healed, all nodes up');
  }

  /** The leader every live node agrees on, if there is one. */
  agreedLeader(): RaftNode | undefined {
    const live = this.nodes.filter((n) => n.raft !== undefined).map((n) => n.raft!);
    const leader = live.find((r) => r.role === 'leader');
    if (leader === undefined) return undefined;
    for (const r of live) if (r.term !== leader.term || r.leaderId !== leader.id) return undefined;
    return leader;
  }

  /** Every live node's payloads (state machine contents from its snapshot plus its whole log). */
  logPayloads(node: SimNodeState): Set<string> {
    const r = node.raft!;
    const out = new Set<string>(r.snapshot ? (JSON.parse(decoder.decode(r.snapshot.data)) as string[]) : []);
    for (let i = r.log.firstIndex; i <= r.log.lastIndex; i++) {
      const e = r.log.entry(i)!;
      if (e.kind === 'data') out.add(decoder.decode(e.data));
    }
    return out;
  }
}

export function describeMessage(m: import('../raft/raft.js').RaftMessage): string {
  const head = `${m.type} ${m.from}->${m.to} t${m.term}`;
  switch (m.type) {
    case 'PreVote':
    case 'Vote':
      return `${head} last ${m.lastLogIndex}/${m.lastLogTerm}`;
    case 'PreVoteResponse':
    case 'VoteResponse':
      return `${head} ${m.granted ? 'granted' : 'rejected'}`;
    case 'AppendEntries':
      return `${head} prev ${m.prevLogIndex}/${m.prevLogTerm} entries ${m.entries.length} commit ${m.leaderCommit}`;
    case 'AppendEntriesResponse':
      return m.success
        ? `${head} ok match ${m.matchIndex}`
        : `${head} reject ${m.rejectedIndex} hint ${m.conflictIndex}/${m.conflictTerm ?? '-'}`;
    case 'InstallSnapshot':
      return `${head} snapshot ${m.snapshot.index}/${m.snapshot.term}`;
    case 'InstallSnapshotResponse':
      return `${head} match ${m.matchIndex}`;
  }
}

export function runSimulation(options: SimOptions): SimResult {
  const prng = new Prng(options.seed);
  const profile = chooseProfile(prng.fork(), options.nodeCount);
  options.log?.(`seed ${options.seed}: ${JSON.stringify(profile)}`);
  const cluster = new SimCluster(options, profile, prng);
  const faultTicks = options.faultTicks ?? 1000;
  const settleTicksMax = options.settleTicksMax ?? 200;
  const commitTicksMax = options.commitTicksMax ?? 200;
  const livenessProposals = options.livenessProposals ?? 5;
  const ticksMax = options.ticksMax ?? Number.POSITIVE_INFINITY;
  const log = (line: string) => options.log?.(`[${String(cluster.tick).padStart(5)}] ${line}`);
  let violation: Violation | undefined;
  try {
    while (cluster.tick < faultTicks && cluster.tick < ticksMax) cluster.step(true, profile.proposeRate);
    if (cluster.tick < ticksMax) {
      cluster.healAll();
      // Liveness 1: a leader every node agrees on.
      // It must hold for a full election timeout: a leader isolated just before the heal may
      // still be on its way out (check-quorum), and proposals it takes may rightly be lost.
      const healTick = cluster.tick;
      let agreedSinceTick: number | undefined;
      let agreedTerm = -1;
      for (;;) {
        const leader = cluster.agreedLeader();
        if (leader === undefined || leader.term !== agreedTerm) {
          agreedSinceTick = leader === undefined ? undefined : cluster.tick;
          agreedTerm = leader?.term ?? -1;
        }
        if (agreedSinceTick !== undefined && cluster.tick - agreedSinceTick >= ELECTION_TICKS.max) break;
        if (cluster.tick - healTick >= settleTicksMax) {
          throw new Violation(
            'liveness',
            `no stable agreed leader ${settleTicksMax} ticks after faults stopped`,
          );
        }
        cluster.step(false, 0);
      }
      log(
        `leader ${cluster.agreedLeader()!.id} agreed by all since ${agreedSinceTick}, ${cluster.tick - healTick} ticks after the heal`,
      );
      // Liveness 2: new proposals are applied everywhere within a bound.
      const startTick = cluster.tick;
      const mine: string[] = [];
      while (mine.length < livenessProposals) {
        if (cluster.tick - startTick >= commitTicksMax) {
          throw new Violation(
            'liveness',
            `only ${mine.length} proposals accepted in ${commitTicksMax} ticks`,
          );
        }
        const p = cluster.propose();
        if (p !== undefined) mine.push(p.payload);
        cluster.step(false, 0);
      }
      for (;;) {
        const missing = cluster.nodes.filter((n) => !mine.every((p) => n.payloads.includes(p)));
        if (missing.length === 0) break;
        if (cluster.tick - startTick >= commitTicksMax) {
          throw new Violation(
            'liveness',
            `proposals ${mine.join(',')} not applied on nodes ${missing.map((n) => n.id).join(',')} within ${commitTicksMax} ticks`,
          );
        }
        cluster.step(false, 0);
      }
      log(`liveness proposals applied everywhere after ${cluster.tick - startTick} ticks`);
      // Acknowledged proposals survive everything, on every node.
      cluster.checker.afterStep(cluster.tick, cluster.nodes, true);
      for (const n of cluster.nodes) {
        const have = cluster.logPayloads(n);
        for (const payload of cluster.acked.keys()) {
          if (!have.has(payload)) {
            throw new Violation('acked-lost', `acknowledged proposal ${payload} missing on node ${n.id}`);
          }
        }
      }
    }
  } catch (err) {
    if (err instanceof Violation) violation = err;
    else
      violation = new Violation(
        'exception',
        err instanceof Error ? `${err.message}\n${err.stack}` : String(err),
      );
  }
  if (violation) log(`VIOLATION ${violation.message}`);
  return {
    seed: options.seed,
    ok: violation === undefined,
    violation,
    ticks: cluster.tick,
    profile,
    stats: {
      committedIndexMax: cluster.checker.committedIndexMax,
      proposalsAcked: cluster.acked.size,
      leaderTermMax: cluster.leaderTermMax,
      crashes: cluster.crashes,
      partitions: cluster.partitions,
      messagesSent: cluster.network.sentCount,
      messagesDropped: cluster.network.droppedCount,
      snapshotsTaken: cluster.snapshotsTaken,
    },
  };
}
