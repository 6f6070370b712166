/**
 * SimController: a small model of the KRaft controller's part in one partition's replication. It
 * is a single reliable process (the real one is a Raft quorum, simulated in src/sim); what the
 * model keeps is the controller's rules:
 *
 * - Brokers heartbeat; one silent for `sessionTimeoutMs` is fenced. A heartbeat from a fenced broker
 *   unfences it; a heartbeat with a new incarnation (a restart the controller did not notice) fences
 *   the old incarnation first. Partition states are addressed to a broker incarnation, so a
 *   restarted broker never acts on a state meant for its previous life.
 * - Fencing the leader elects a new one from the ISR (minus the fenced broker); with no eligible ISR
 *   member the partition goes offline (leader -1) and the ISR is kept, unless unclean election is on:
 *   then any unfenced replica is elected and the ISR becomes just it (acknowledged records may be lost).
 *   Fencing a follower removes it from the ISR unless it is the last member.
 * - AlterPartition (KIP-497) is applied only from the current leader at the current leader epoch and
 *   partition epoch, and may add only unfenced replicas (INELIGIBLE_REPLICA otherwise).
 * - Every change bumps the partition epoch; every leader change bumps the leader epoch.
 * - `moveLeader` is a controlled failover (preferred leader election, controlled shutdown).
 */

import { ErrorCode } from '../../protocol/errors.js';
import {
  type AlterPartitionRequest,
  type AlterPartitionResponse,
  type BrokerId,
  NO_LEADER,
  type PartitionState,
} from '../messages.js';

export interface ControllerOptions {
  readonly replicas: readonly BrokerId[];
  readonly sessionTimeoutMs: number;
  readonly uncleanLeaderElection: boolean;
}

interface BrokerRegistration {
  incarnation: number;
  fenced: boolean;
  lastHeartbeatMs: number;
}

export interface Election {
  readonly leaderId: BrokerId;
  readonly leaderEpoch: number;
  readonly unclean: boolean;
  readonly reason: string;
}

export class SimController {
  private stateValue: PartitionState;
  private readonly brokers = new Map<BrokerId, BrokerRegistration>();
  readonly elections: Election[] = [];
  /** Set whenever the state changed; the driver broadcasts and clears it. */
  changed = true;
  uncleanElections = 0;

  constructor(
    readonly options: ControllerOptions,
    nowMs: number,
  ) {
    const replicas = [...options.replicas];
    for (const id of replicas)
      this.brokers.set(id, { incarnation: 0, fenced: false, lastHeartbeatMs: nowMs });
    this.stateValue = { leaderId: replicas[0]!, leaderEpoch: 0, partitionEpoch: 0, isr: replicas, replicas };
    this.elections.push({ leaderId: replicas[0]!, leaderEpoch: 0, unclean: false, reason: 'create' });
  }

  get state(): PartitionState {
    return this.stateValue;
  }

  incarnationOf(id: BrokerId): number | undefined {
    return this.brokers.get(id)?.incarnation;
  }

  isFenced(id: BrokerId): boolean {
    return this.brokers.get(id)?.fenced ?? true;
  }

  onHeartbeat(id: BrokerId, incarnation: number, nowMs: number): void {
    const b = this.brokers.get(id);
    if (b === undefined || incarnation < b.incarnation) return;
    if (incarnation > b.incarnation) {
      if (!b.fenced) this.fence(id, 'restarted');
      b.incarnation = incarnation;
    }
    b.lastHeartbeatMs = nowMs;
    if (b.fenced) this.unfence(id);
  }

  tick(nowMs: number): void {
    for (const [id, b] of this.brokers) {
      if (!b.fenced && nowMs - b.lastHeartbeatMs > this.options.sessionTimeoutMs)
        this.fence(id, 'session expired');
    }
  }

  onAlterPartition(req: AlterPartitionRequest): AlterPartitionResponse {
    const s = this.stateValue;
    const reject = (errorCode: ErrorCode): AlterPartitionResponse => ({
      errorCode,
      state: undefined,
      requestPartitionEpoch: req.partitionEpoch,
    });
    if (req.brokerId !== s.leaderId) return reject(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    if (req.leaderEpoch !== s.leaderEpoch) return reject(ErrorCode.FENCED_LEADER_EPOCH);
    if (req.partitionEpoch !== s.partitionEpoch) return reject(ErrorCode.INVALID_UPDATE_VERSION);
    const newIsr = [...new Set(req.newIsr)];
    if (!newIsr.includes(s.leaderId) || newIsr.some((id) => !s.replicas.includes(id))) {
      return reject(ErrorCode.INVALID_REQUEST);
    }
    if (newIsr.some((id) => !s.isr.includes(id) && this.isFenced(id)))
      return reject(ErrorCode.INELIGIBLE_REPLICA);
    this.setState({ ...s, isr: newIsr, partitionEpoch: s.partitionEpoch + 1 });
    return { errorCode: ErrorCode.NONE, state: this.stateValue, requestPartitionEpoch: req.partitionEpoch };
  }

  /** Controlled failover to `target`, which must be an unfenced ISR member. */
  moveLeader(target: BrokerId): boolean {
    const s = this.stateValue;
    if (target === s.leaderId || !s.isr.includes(target) || this.isFenced(target)) return false;
    this.electLeader(target, s.isr, false, 'moved');
    return true;
  }

  private fence(id: BrokerId, reason: string): void {
    const b = this.brokers.get(id)!;
    b.fenced = true;
    const s = this.stateValue;
    const isr = s.isr.length > 1 ? s.isr.filter((m) => m !== id) : s.isr;
    if (s.leaderId === id) {
      this.elect(isr, `leader ${id} fenced (${reason})`);
    } else if (isr.length !== s.isr.length) {
      this.setState({ ...s, isr, partitionEpoch: s.partitionEpoch + 1 });
    }
  }

  private unfence(id: BrokerId): void {
    this.brokers.get(id)!.fenced = false;
    if (this.stateValue.leaderId === NO_LEADER) this.elect(this.stateValue.isr, `broker ${id} unfenced`);
  }

  /** Elects from `isr` (clean), else from any unfenced replica (unclean, when enabled), else offline. */
  private elect(isr: readonly BrokerId[], reason: string): void {
    const s = this.stateValue;
    const clean = s.replicas.filter((id) => isr.includes(id) && !this.isFenced(id));
    if (clean.length > 0) {
      this.electLeader(clean[0]!, isr, false, reason);
      return;
    }
    if (this.options.uncleanLeaderElection) {
      const any = s.replicas.filter((id) => !this.isFenced(id));
      if (any.length > 0) {
        this.uncleanElections++;
        this.electLeader(any[0]!, [any[0]!], true, reason);
        return;
      }
    }
    if (s.leaderId === NO_LEADER && isr.length === s.isr.length) return;
    this.electLeader(NO_LEADER, isr, false, reason);
  }

  private electLeader(leaderId: BrokerId, isr: readonly BrokerId[], unclean: boolean, reason: string): void {
    const s = this.stateValue;
    this.setState({
      ...s,
      leaderId,
      isr: [...isr],
      leaderEpoch: s.leaderEpoch + 1,
      partitionEpoch: s.partitionEpoch + 1,
    });
    this.elections.push({ leaderId, leaderEpoch: s.leaderEpoch + 1, unclean, reason });
  }

  private setState(next: PartitionState): void {
    this.stateValue = next;
    this.changed = true;
  }
}
