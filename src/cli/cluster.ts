/**
 * `sluice cluster status`: is the cluster healthy? Three questions, three requests:
 *
 * - Nodes (DescribeCluster): the live brokers with address and rack, plus every quorum voter
 *   that is not a live broker (shown as down).
 * - Quorum (DescribeQuorum, `__cluster_metadata` partition 0): leader, epoch, high watermark, and
 *   per voter its log end offset, its lag behind the leader and when it last fetched and was last
 *   caught up (the leader's clock). A single node without a quorum says so.
 * - Partitions (Metadata, all topics, internal ones included): those under-replicated (ISR smaller
 *   than the replica set) or offline (no leader).
 *
 * Exit code: 0 healthy; 2 degraded (an under-replicated or offline partition, a voter that is not
 * a live broker, no quorum leader); 1 when the status cannot be read at all.
 *
 * Gathering (`readClusterStatus`) is kept apart from judging (`assessCluster`) and printing
 * (`formatClusterStatus`), which are pure so tests can feed them any state.
 */

import { parseArgs } from 'node:util';
import {
  Admin,
  type ClusterDescription,
  KafkaResponseError,
  type QuorumDescription,
  UnsupportedVersionError,
} from '../client/index.js';
import { ErrorCode } from '../protocol/errors.js';
import { GLOBAL_OPTIONS, UsageError, globalFlags, table } from './common.js';

export const CLUSTER_USAGE = `Usage: sluice cluster status [--bootstrap HOST:PORT] [--json]

Shows the nodes (DescribeCluster), the metadata quorum (DescribeQuorum: leader, epoch, high
watermark, each voter's log end offset, lag and last fetch) and the partitions that are
under-replicated (ISR smaller than the replicas) or offline (no leader).

Exit code: 0 healthy, 2 degraded (under-replicated or offline partitions, a voter that is not a
live broker, no quorum leader), 1 error.

Global options: --bootstrap HOST:PORT (or --bootstrap-server; default $SLUICE_BOOTSTRAP_SERVER
or 127.0.0.1:9092), --json`;

/** Exit code for a cluster that answers but is degraded. */
export const EXIT_DEGRADED = 2;

export type QuorumState =
  | { kind: 'ok'; quorum: QuorumDescription }
  /** No quorum by design: a single node (healthy). */
  | { kind: 'none'; reason: string }
  /** A quorum that cannot answer now (no leader): degraded. */
  | { kind: 'unavailable'; reason: string };

export interface PartitionState {
  topic: string;
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}

export interface ClusterStatus {
  cluster: ClusterDescription;
  quorum: QuorumState;
  topicCount: number;
  partitions: PartitionState[];
}

export interface NodeRow {
  id: number;
  host: string | null;
  port: number | null;
  rack: string | null;
  live: boolean;
  controller: boolean;
}

export interface ClusterHealth {
  nodes: NodeRow[];
  underReplicated: PartitionState[];
  offline: PartitionState[];
  /** Voters that are not live brokers. */
  downNodes: number[];
  problems: string[];
  healthy: boolean;
}

const byTopicPartition = (a: PartitionState, b: PartitionState) =>
  a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;

/** Judges a status: what is wrong with it, if anything. */
export function assessCluster(s: ClusterStatus): ClusterHealth {
  const rows = new Map<number, NodeRow>();
  for (const b of s.cluster.brokers)
    rows.set(b.nodeId, {
      id: b.nodeId,
      host: b.host,
      port: b.port,
      rack: b.rack,
      live: true,
      controller: b.nodeId === s.cluster.controllerId,
    });
  if (s.quorum.kind === 'ok')
    for (const v of s.quorum.quorum.voters)
      if (!rows.has(v.nodeId))
        rows.set(v.nodeId, {
          id: v.nodeId,
          host: null,
          port: null,
          rack: null,
          live: false,
          controller: false,
        });
  const nodes = [...rows.values()].sort((a, b) => a.id - b.id);
  const offline = s.partitions.filter((p) => p.leader < 0).sort(byTopicPartition);
  const underReplicated = s.partitions
    .filter((p) => p.leader >= 0 && p.isr.length < p.replicas.length)
    .sort(byTopicPartition);
  const downNodes = nodes.filter((n) => !n.live).map((n) => n.id);
  const problems: string[] = [];
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (downNodes.length > 0)
    problems.push(`${plural(downNodes.length, 'voter')} not a live broker (${downNodes.join(', ')})`);
  if (s.quorum.kind === 'unavailable') problems.push(`no quorum leader (${s.quorum.reason})`);
  else if (s.quorum.kind === 'ok' && s.quorum.quorum.leaderId < 0) problems.push('no quorum leader');
  if (underReplicated.length > 0)
    problems.push(`${plural(underReplicated.length, 'partition')} under-replicated`);
  if (offline.length > 0) problems.push(`${plural(offline.length, 'partition')} offline`);
  return { nodes, underReplicated, offline, downNodes, problems, healthy: problems.length === 0 };
}

/** "35 ms ago", "2.4 s ago", "3 min ago"; "-" when unknown (-1). */
export function ago(nowMs: number, timestampMs: number): string {
  if (timestampMs < 0) return '-';
  const ms = Math.max(0, nowMs - timestampMs);
  if (ms < 1000) return `${ms} ms ago`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s ago`;
  return `${Math.round(ms / 60_000)} min ago`;
}

const list = (ids: number[]) => (ids.length === 0 ? '-' : ids.join(','));
const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

function partitionTable(parts: PartitionState[]): string {
  return indent(
    table([
      ['Topic', 'Partition', 'Leader', 'Replicas', 'ISR', 'Offline'],
      ...parts.map((p) => [
        p.topic,
        String(p.partition),
        p.leader < 0 ? 'none' : String(p.leader),
        list(p.replicas),
        list(p.isr),
        list(p.offlineReplicas),
      ]),
    ]),
  );
}

/** The text `sluice cluster status` prints. `nowMs` turns the leader's timestamps into ages. */
export function formatClusterStatus(s: ClusterStatus, h: ClusterHealth, nowMs: number): string {
  const out: string[] = [];
  const c = s.cluster;
  out.push(
    `Cluster ${c.clusterId || '(no id)'}  controller: ${c.controllerId < 0 ? 'none' : `node ${c.controllerId}`}`,
  );
  out.push(`Nodes (${h.nodes.filter((n) => n.live).length} live of ${h.nodes.length}):`);
  out.push(
    indent(
      table([
        ['Id', 'Address', 'Rack', 'Status'],
        ...h.nodes.map((n) => [
          String(n.id),
          n.host === null ? '-' : `${n.host}:${n.port}`,
          n.rack ?? '-',
          (n.live ? 'live' : 'down (not a live broker)') + (n.controller ? ', controller' : ''),
        ]),
      ]),
    ),
  );
  const q = s.quorum;
  if (q.kind === 'none') out.push(`Quorum: none (${q.reason})`);
  else if (q.kind === 'unavailable') out.push(`Quorum: unavailable (${q.reason})`);
  else {
    const qd = q.quorum;
    const leaderEnd = qd.voters.find((v) => v.nodeId === qd.leaderId)?.logEndOffset ?? -1;
    out.push(
      `Quorum (__cluster_metadata-0): leader ${qd.leaderId < 0 ? 'none' : `node ${qd.leaderId}`}, epoch ${qd.leaderEpoch}, high watermark ${qd.highWatermark}`,
    );
    const rows = [
      ...qd.voters.map((v) => ({ v, role: v.nodeId === qd.leaderId ? 'leader' : 'follower' })),
      ...qd.observers.map((v) => ({ v, role: 'observer' })),
    ];
    out.push(
      indent(
        table([
          ['Node', 'Role', 'LogEndOffset', 'Lag', 'LastFetch', 'LastCaughtUp'],
          ...rows.map(({ v, role }) => [
            String(v.nodeId),
            role,
            v.logEndOffset < 0 ? '-' : String(v.logEndOffset),
            v.logEndOffset < 0 || leaderEnd < 0 ? '-' : String(Math.max(0, leaderEnd - v.logEndOffset)),
            role === 'leader' ? '-' : ago(nowMs, v.lastFetchTimestamp),
            role === 'leader' ? '-' : ago(nowMs, v.lastCaughtUpTimestamp),
          ]),
        ]),
      ),
    );
  }
  const total = s.partitions.length;
  const topics = `${s.topicCount} topic${s.topicCount === 1 ? '' : 's'}`;
  if (h.underReplicated.length === 0 && h.offline.length === 0)
    out.push(`Partitions: ${total} in ${topics}, all fully replicated`);
  else {
    out.push(`Partitions: ${total} in ${topics}`);
    if (h.offline.length > 0)
      out.push(`Offline partitions (${h.offline.length}):`, partitionTable(h.offline));
    if (h.underReplicated.length > 0)
      out.push(
        `Under-replicated partitions (${h.underReplicated.length}):`,
        partitionTable(h.underReplicated),
      );
  }
  out.push(h.healthy ? 'Status: healthy' : `Status: degraded: ${h.problems.join('; ')}`);
  return out.join('\n');
}

/** Reads the three parts of the status; throws only when the cluster cannot be reached. */
export async function readClusterStatus(admin: Admin): Promise<ClusterStatus> {
  const cluster = await admin.describeCluster();
  let quorum: QuorumState;
  try {
    quorum = { kind: 'ok', quorum: await admin.describeQuorum() };
  } catch (err) {
    if (err instanceof KafkaResponseError && err.errorCode === ErrorCode.INVALID_REQUEST)
      quorum = { kind: 'none', reason: 'a single node, not part of a replicated cluster' };
    else if (err instanceof UnsupportedVersionError)
      quorum = { kind: 'none', reason: 'the broker does not support DescribeQuorum' };
    else if (
      err instanceof KafkaResponseError &&
      (err.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER || err.errorCode === ErrorCode.NOT_CONTROLLER)
    )
      quorum = { kind: 'unavailable', reason: err.message };
    else throw err;
  }
  await admin.cluster.refreshMetadata(null);
  const partitions: PartitionState[] = [];
  for (const t of admin.cluster.topics.values())
    for (const p of t.partitions)
      partitions.push({
        topic: t.name,
        partition: p.partition,
        leader: p.leader,
        replicas: p.replicas,
        isr: p.isr,
        offlineReplicas: p.offlineReplicas,
      });
  return { cluster, quorum, topicCount: admin.cluster.topics.size, partitions };
}

/** The --json document: the status, the verdict and the problem partitions. */
function statusJson(s: ClusterStatus, h: ClusterHealth) {
  return {
    clusterId: s.cluster.clusterId,
    controllerId: s.cluster.controllerId,
    nodes: h.nodes,
    quorum:
      s.quorum.kind === 'ok' ? s.quorum.quorum : { unavailable: s.quorum.kind, reason: s.quorum.reason },
    topics: s.topicCount,
    partitions: s.partitions.length,
    underReplicated: h.underReplicated,
    offline: h.offline,
    healthy: h.healthy,
    problems: h.problems,
  };
}

export async function runCluster(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...GLOBAL_OPTIONS } });
  const [sub, ...extra] = positionals;
  if (values.help || sub === undefined) {
    console.log(CLUSTER_USAGE);
    return values.help ? 0 : 1;
  }
  if (sub !== 'status') throw new UsageError(`unknown cluster subcommand "${sub}"`, CLUSTER_USAGE);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, CLUSTER_USAGE);
  const flags = globalFlags(values);
  const admin = new Admin({ bootstrapServers: flags.bootstrapServer, clientId: 'sluice-cli' });
  try {
    const status = await readClusterStatus(admin);
    const health = assessCluster(status);
    console.log(
      flags.json
        ? JSON.stringify(statusJson(status, health), null, 2)
        : formatClusterStatus(status, health, Date.now()),
    );
    return health.healthy ? 0 : EXIT_DEGRADED;
  } finally {
    await admin.close();
  }
}
