/**
 * RaftDriver: runs a RaftNode for real — timers, disk, network, and a state machine callback.
 *
 * - Time: a `tickMs` interval calls node.tick() (defaults: 50 ms ticks, election timeout 10-20
 *   ticks = 0.5-1 s, heartbeat every 2 ticks = 100 ms).
 * - Disk: every PersistWrite from ready() goes to a DurableRaftLog in order; when it is fsynced
 *   the driver calls node.diskWritten(writeId). Writes queued behind an fsync share the next one.
 * - Network: ready().messages go to the RaftTransport (controller listener); received messages
 *   go to node.receive().
 * - State machine: ready().snapshot goes to `loadSnapshot`, committed data entries to `apply`, in
 *   log order, synchronously (no-op entries advance appliedIndex but are not handed out).
 * - Clients: propose(data) resolves with {index, term} once the entry is committed and applied
 *   here. It rejects with NotLeaderError (carrying the leader id, if known) when this node is not
 *   the leader, or when leadership or term changes before the entry commits; in that case the
 *   entry may still commit under the next leader (`mayHaveCommitted`), so proposals should be
 *   idempotent or checked against the applied state before a retry.
 *
 * Every input is followed by a drain of ready() until the node has nothing more; the drain is
 * re-entrant-safe (an apply callback may call propose()).
 *
 * An I/O failure of the store or a throwing callback is fatal: the driver stops, rejects pending
 * proposals and emits 'fatal'. Continuing without a working disk would break Raft's promises.
 */

import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { type LogFileSystem, NodeFileSystem } from '../storage/fs.js';
import { DurableRaftLog } from './durable-log.js';
import type { LogEntry, NodeId } from './log.js';
import type { RaftMessage, Snapshot } from './messages.js';
import { type LeaderChange, type RaftConfig, RaftNode, type Role } from './raft.js';
import { type PeerAddress, RaftTransport, type RaftTransportOptions } from './transport.js';

export type { PeerAddress } from './transport.js';

export interface RaftDriverOptions {
  readonly id: NodeId;
  /** Every voter's controller address, this node's included. Just this node: a single-node quorum. */
  readonly voters: readonly PeerAddress[];
  /** Where to listen (default: this node's entry in `voters`). */
  readonly listen?: { readonly host: string; readonly port: number };
  /** The Raft store lives in `<dataDir>/__cluster_metadata-0` (as KRaft names it). */
  readonly dataDir: string;
  readonly fs?: LogFileSystem;
  readonly clusterId?: string;
  /** Called with each committed data entry, in log order, exactly once per process lifetime. */
  readonly apply: (entry: LogEntry) => void;
  /** Called with a snapshot to load before applying what follows it (on restart or from the leader). */
  readonly loadSnapshot?: (snapshot: Snapshot) => void;
  readonly tickMs?: number;
  readonly electionTimeoutTicks?: { readonly min: number; readonly max: number };
  readonly heartbeatTicks?: number;
  readonly random?: () => number;
  readonly logger?: { warn(msg: string): void; info?(msg: string): void };
  /** Further RaftNode knobs (batch sizes, queue bounds). */
  readonly raft?: Partial<
    Pick<RaftConfig, 'appendEntriesMax' | 'uncommittedEntriesMax' | 'messagesQueuedMax' | 'applyEntriesMax'>
  >;
  readonly transport?: Partial<
    Pick<
      RaftTransportOptions,
      'frameBytesMax' | 'sendQueueMax' | 'reconnectBackoffMs' | 'connectTimeoutMs' | 'localAddress'
    >
  >;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leaderId: NodeId | undefined;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly durableIndex: number;
  readonly snapshotIndex: number;
  readonly voters: readonly NodeId[];
  /** On the leader, each follower's replication progress (empty on other nodes). */
  readonly followers: readonly FollowerStatus[];
}

/** What the leader knows of a follower, for status reports (DescribeQuorum). */
export interface FollowerStatus {
  readonly id: NodeId;
  /** Highest index known to be durable on the follower. */
  readonly matchIndex: number;
  /** Wall-clock ms of the follower's last answer to this leader; undefined if none since it became leader. */
  readonly lastContactMs: number | undefined;
  /** Wall-clock ms of the last answer that showed the follower holding all the leader's log. */
  readonly lastCaughtUpMs: number | undefined;
}

export class NotLeaderError extends Error {
  readonly code = 'NOT_LEADER';
  readonly leaderId: NodeId | undefined;
  readonly term: number;
  /** True when the entry was appended before leadership was lost: it may still commit. */
  readonly mayHaveCommitted: boolean;
  constructor(leaderId: NodeId | undefined, term: number, mayHaveCommitted: boolean) {
    super(
      mayHaveCommitted
        ? `leadership changed before the entry committed (leader now ${leaderId ?? 'unknown'}, term ${term})`
        : `not the leader (leader ${leaderId ?? 'unknown'}, term ${term})`,
    );
    this.name = 'NotLeaderError';
    this.leaderId = leaderId;
    this.term = term;
    this.mayHaveCommitted = mayHaveCommitted;
  }
}

export class RaftDriverError extends Error {
  readonly code: 'BACKPRESSURE' | 'STOPPED' | 'FATAL';
  constructor(code: 'BACKPRESSURE' | 'STOPPED' | 'FATAL', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'RaftDriverError';
  }
}

interface PendingProposal {
  readonly term: number;
  readonly resolve: (r: { index: number; term: number }) => void;
  readonly reject: (err: Error) => void;
}

export interface RaftDriverEvents {
  leaderChange: [LeaderChange];
  fatal: [Error];
}

export class RaftDriver extends EventEmitter<RaftDriverEvents> {
  readonly id: NodeId;
  private readonly options: RaftDriverOptions;
  private readonly node: RaftNode;
  private readonly store: DurableRaftLog;
  private readonly transport: RaftTransport;
  private readonly logger: { warn(msg: string): void; info?(msg: string): void };
  private timer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<number, PendingProposal>();
  private pumping = false;
  private pumpAgain = false;
  private stopped = false;
  private fatalError: Error | undefined;
  /** Leader only: when each follower last answered, and was last caught up (cleared on election). */
  private readonly contact = new Map<NodeId, { lastContactMs: number; lastCaughtUpMs: number | undefined }>();

  private constructor(
    options: RaftDriverOptions,
    node: RaftNode,
    store: DurableRaftLog,
    transport: RaftTransport,
  ) {
    super();
    this.id = options.id;
    this.options = options;
    this.node = node;
    this.store = store;
    this.transport = transport;
    this.logger = options.logger ?? { warn: (msg) => console.warn(msg) };
  }

  /** Recovers the store, starts the listener and the tick timer. */
  static async start(options: RaftDriverOptions): Promise<RaftDriver> {
    const self = options.voters.find((v) => v.id === options.id);
    if (self === undefined) throw new Error(`node ${options.id} is not among the voters`);
    const logger = options.logger ?? { warn: (msg: string) => console.warn(msg) };
    const fs = options.fs ?? new NodeFileSystem();
    const store = new DurableRaftLog(fs, path.join(options.dataDir, '__cluster_metadata-0'), { logger });
    const durable = await store.recover();
    const node = new RaftNode(
      {
        id: options.id,
        voters: options.voters.map((v) => v.id),
        electionTimeoutTicks: options.electionTimeoutTicks ?? { min: 10, max: 20 },
        heartbeatTicks: options.heartbeatTicks ?? 2,
        random: options.random ?? Math.random,
        ...options.raft,
      },
      durable,
    );
    const ref: { driver?: RaftDriver } = {};
    const transport = new RaftTransport({
      nodeId: options.id,
      listen: options.listen ?? { host: self.host, port: self.port },
      peers: options.voters,
      clusterId: options.clusterId,
      logger,
      onMessage: (m) => ref.driver?.receive(m),
      ...options.transport,
    });
    const driver = new RaftDriver(options, node, store, transport);
    ref.driver = driver;
    try {
      await transport.start();
    } catch (err) {
      await store.close();
      throw err;
    }
    driver.timer = setInterval(() => driver.onTick(), options.tickMs ?? 50);
    driver.pump();
    return driver;
  }

  /** The controller listener's port (useful when started on port 0). */
  get port(): number {
    return this.transport.port;
  }

  status(): RaftStatus {
    const n = this.node;
    return {
      id: this.id,
      role: n.role,
      term: n.term,
      leaderId: n.leaderId,
      commitIndex: n.commitIndex,
      appliedIndex: n.appliedIndex,
      lastIndex: n.log.lastIndex,
      durableIndex: n.durableIndex,
      snapshotIndex: n.log.snapshotIndex,
      voters: n.voters,
      followers: n.followerProgress().map((f) => ({
        id: f.id,
        matchIndex: f.matchIndex,
        lastContactMs: this.contact.get(f.id)?.lastContactMs,
        lastCaughtUpMs: this.contact.get(f.id)?.lastCaughtUpMs,
      })),
    };
  }

  /** Appends `data` to the replicated log; resolves when it is committed and applied here. */
  propose(data: Uint8Array): Promise<{ index: number; term: number }> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    const r = this.node.propose(data);
    if (!r.ok) {
      return Promise.reject(
        r.reason === 'not_leader'
          ? new NotLeaderError(r.leaderId, r.term, false)
          : new RaftDriverError('BACKPRESSURE', 'too many uncommitted entries; retry later'),
      );
    }
    const promise = new Promise<{ index: number; term: number }>((resolve, reject) => {
      this.pending.set(r.index, { term: r.term, resolve, reject });
    });
    this.pump();
    return promise;
  }

  /**
   * Takes a snapshot: `data` is the state machine as of `index` (<= appliedIndex). Entries up to
   * it are dropped from the log, on disk by a new log generation. False if not above the last one.
   */
  compact(index: number, data: Uint8Array): boolean {
    if (this.stopped) return false;
    const ok = this.node.compact(index, data);
    this.pump();
    return ok;
  }

  /** Stops timers and connections and waits for queued disk writes. Pending proposals reject. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.rejectAll(this.stoppedError());
    await this.transport.stop();
    await this.store.close();
  }

  // ---------------------------------------------------------------------------------------------

  private stoppedError(): Error {
    return this.fatalError !== undefined
      ? new RaftDriverError('FATAL', `raft node ${this.id} failed: ${this.fatalError.message}`, {
          cause: this.fatalError,
        })
      : new RaftDriverError('STOPPED', `raft node ${this.id} is stopped`);
  }

  private onTick(): void {
    if (this.stopped) return;
    this.node.tick();
    this.pump();
  }

  private receive(m: RaftMessage): void {
    if (this.stopped) return;
    try {
      this.node.receive(m);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (
      (m.type === 'AppendEntriesResponse' || m.type === 'InstallSnapshotResponse') &&
      this.node.role === 'leader'
    )
      this.noteContact(m.from);
    this.pump();
  }

  /** Real time stays here, out of RaftNode: the leader's wall clock for status reports only. */
  private noteContact(from: NodeId): void {
    const now = Date.now();
    const match = this.node.followerProgress().find((f) => f.id === from)?.matchIndex ?? 0;
    const c = this.contact.get(from) ?? { lastContactMs: now, lastCaughtUpMs: undefined };
    c.lastContactMs = now;
    if (match >= this.node.log.lastIndex) c.lastCaughtUpMs = now;
    this.contact.set(from, c);
  }

  private pump(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        while (!this.stopped && this.node.hasReady()) this.handleReady();
      } while (this.pumpAgain && !this.stopped);
    } catch (err) {
      this.fail(err);
    } finally {
      this.pumping = false;
    }
  }

  private handleReady(): void {
    const rd = this.node.ready();
    const w = rd.persist;
    if (w !== undefined) {
      this.store.write(w).then(
        () => {
          if (this.stopped) return;
          try {
            this.node.diskWritten(w.writeId);
          } catch (err) {
            this.fail(err);
            return;
          }
          this.pump();
        },
        (err: unknown) => this.fail(err),
      );
    }
    for (const m of rd.messages) this.transport.send(m);
    if (rd.snapshot !== undefined) {
      if (this.options.loadSnapshot === undefined) {
        throw new Error(`snapshot at ${rd.snapshot.index} but no loadSnapshot callback`);
      }
      this.options.loadSnapshot(rd.snapshot);
      // Proposals the snapshot covers are committed, but we cannot tell whether ours survived.
      for (const [index, p] of this.pending) {
        if (index <= rd.snapshot.index) {
          this.pending.delete(index);
          p.reject(new NotLeaderError(this.node.leaderId, this.node.term, true));
        }
      }
    }
    for (const e of rd.committed) {
      if (e.kind === 'data') this.options.apply(e);
      const p = this.pending.get(e.index);
      if (p !== undefined) {
        this.pending.delete(e.index);
        if (p.term === e.term) p.resolve({ index: e.index, term: e.term });
        else p.reject(new NotLeaderError(this.node.leaderId, this.node.term, false));
      }
    }
    if (rd.leaderChange !== undefined) {
      const c = rd.leaderChange;
      this.logger.info?.(`[raft ${this.id}] ${c.role}, term ${c.term}, leader ${c.leaderId ?? '-'}`);
      if (c.role === 'leader') this.contact.clear();
      if (c.role !== 'leader') {
        for (const p of this.pending.values()) p.reject(new NotLeaderError(c.leaderId, c.term, true));
        this.pending.clear();
      } else {
        for (const [index, p] of this.pending) {
          if (p.term !== c.term) {
            this.pending.delete(index);
            p.reject(new NotLeaderError(c.leaderId, c.term, true));
          }
        }
      }
      this.emit('leaderChange', c);
    }
  }

  private rejectAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private fail(err: unknown): void {
    if (this.stopped) return;
    const e = err instanceof Error ? err : new Error(String(err));
    this.fatalError = e;
    this.logger.warn(`[raft ${this.id}] fatal: ${e.message}`);
    void this.stop();
    this.emit('fatal', e);
  }
}
