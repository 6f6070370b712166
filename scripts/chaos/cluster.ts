/**
 * A fresh 3-node Sluice cluster of real processes for one chaos run (BrokerProcess from
 * test/helpers: its own data dirs, ports and build of src), and the wire-level probes the harness
 * needs while nodes die and freeze: metadata from any node that answers within a deadline, "is
 * every partition led with a full ISR", and the final read of a partition from its leader.
 *
 * Every node is a Raft voter and a broker. A node is `running` (process up), `paused` (SIGSTOP) or
 * `down` (SIGKILLed, not restarted yet); heal() brings every node back to running and removes
 * every network partition.
 *
 * Nodes reach each other only through a PartitionProxy (proxy.ts): each node advertises a proxy
 * port for its Kafka listener and its voter entry is a proxy port for its controller listener, and
 * its connections to other nodes come from its own loopback IP. Clients bootstrap through the
 * proxies too (they are never cut); the harness's probes go straight to each node's own port.
 */

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiKey } from '../../src/protocol/generated/index.js';
import { BrokerProcess, freePort } from '../../test/helpers/broker-process.js';
import { listOffsetFull, readPartition } from '../../test/helpers/read-partition.js';
import { WireClient } from '../../test/helpers/wire-client.js';
import type { FinalRecord } from './checker.js';
import { NodeDisk } from './disk.js';
import { PartitionProxy, nodeSourceIp } from './proxy.js';

export const NODES = 3;
/** A probe of a node gives up after this long (a paused node never answers). */
export const PROBE_TIMEOUT_MS = 2_000;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Rejects after `ms` unless `p` settles first; `onTimeout` runs on expiry (e.g. to close a socket). */
export async function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  what: string,
  onTimeout?: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, rej) => {
    timer = setTimeout(() => {
      onTimeout?.();
      rej(new Error(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

export interface PartitionState {
  partition: number;
  leader: number;
  leaderEpoch: number;
  isr: number[];
}

export type NodeState = 'running' | 'paused' | 'down';

/** Settings that make failover quick (the same as test/cluster.test.ts). */
const FAST_FAILOVER = [
  'broker.session.timeout.ms=3000',
  'broker.heartbeat.interval.ms=500',
  'replica.lag.time.max.ms=4000',
  'controller.quorum.election.timeout.ms=500',
  'group.initial.rebalance.delay.ms=0',
  'offsets.topic.num.partitions=5',
];

export class ChaosCluster {
  readonly state: NodeState[];
  /** Output of each node's earlier processes (BrokerProcess keeps only the current one's). */
  private readonly earlierOutput: string[];

  private constructor(
    readonly nodes: BrokerProcess[],
    readonly proxy: PartitionProxy,
    /** Each node's advertised (proxied) Kafka port. */
    private readonly proxyPorts: number[],
    /** Each node's own tmpfs, when the run injects full disks. */
    private readonly disks: NodeDisk[],
  ) {
    this.state = nodes.map(() => 'running');
    this.earlierOutput = nodes.map(() => '');
  }

  /** `disks`: give every node a tmpfs of its own of this many bytes (for the disk fault). */
  static async start(clusterId: string, opts: { diskBytes?: number } = {}): Promise<ChaosCluster> {
    // Per node: its Kafka port, its controller port, and the proxy ports in front of each.
    const ports = await Promise.all(Array.from({ length: NODES * 4 }, () => freePort()));
    const kafkaPort = (i: number) => ports[i]!;
    const controllerPort = (i: number) => ports[NODES + i]!;
    const kafkaProxy = (i: number) => ports[2 * NODES + i]!;
    const controllerProxy = (i: number) => ports[3 * NODES + i]!;
    const proxy = new PartitionProxy();
    for (let i = 0; i < NODES; i++) {
      await proxy.front(i + 1, 'kafka', kafkaProxy(i), { host: '127.0.0.1', port: kafkaPort(i) });
      await proxy.front(i + 1, 'controller', controllerProxy(i), {
        host: '127.0.0.1',
        port: controllerPort(i),
      });
    }
    const voters = Array.from({ length: NODES }, (_, i) => `${i + 1}@127.0.0.1:${controllerProxy(i)}`).join(
      ',',
    );
    const common = [`controller.quorum.voters=${voters}`, `cluster.id=${clusterId}`, ...FAST_FAILOVER];
    const disks: NodeDisk[] = [];
    if (opts.diskBytes !== undefined) {
      for (let i = 0; i < NODES; i++)
        disks.push(NodeDisk.mount(join(tmpdir(), `sluice-chaos-disk-${clusterId}-${i + 1}`), opts.diskBytes));
    }
    // Started together: a node waits for a quorum, so starting them one by one would serialise
    // three elections' worth of waiting.
    const nodes = await Promise.all(
      Array.from({ length: NODES }, (_, i) =>
        BrokerProcess.start({
          port: kafkaPort(i),
          dataDir: disks[i]?.dataDir,
          set: [
            ...common,
            `node.id=${i + 1}`,
            `controller.listen=127.0.0.1:${controllerPort(i)}`,
            `advertised.listeners=PLAINTEXT://127.0.0.1:${kafkaProxy(i)}`,
            `node.local.address=${nodeSourceIp(i + 1)}`,
          ],
        }),
      ),
    );
    return new ChaosCluster(
      nodes,
      proxy,
      Array.from({ length: NODES }, (_, i) => kafkaProxy(i)),
      disks,
    );
  }

  /** Client bootstrap addresses: the proxies, which is what the nodes advertise. */
  get bootstraps(): string[] {
    return this.proxyPorts.map((p) => `127.0.0.1:${p}`);
  }

  /** Cuts `node` off from every other node (clients still reach it). */
  isolate(node: number): void {
    this.proxy.isolate(
      node,
      this.nodes.map((_, i) => i + 1),
    );
  }

  /** Cuts the link between two nodes; each still reaches the third. */
  cut(a: number, b: number): void {
    this.proxy.cut(a, b);
  }

  healNetwork(): void {
    this.proxy.heal();
  }

  /** Fills node `id`'s disk; returns the bytes it took. */
  async fillDisk(id: number): Promise<number> {
    const d = this.disks[id - 1];
    if (!d) throw new Error('this cluster was started without disks of its own (diskBytes)');
    return d.fill();
  }

  async freeDisk(id: number): Promise<void> {
    await this.disks[id - 1]?.free();
  }

  node(id: number): BrokerProcess {
    const n = this.nodes[id - 1];
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  portOf(id: number): number {
    return this.node(id).port;
  }

  async kill(id: number): Promise<void> {
    this.state[id - 1] = 'down';
    this.node(id).signal('SIGCONT'); // a paused process dies on SIGKILL too, but be explicit
    await this.node(id).kill();
  }

  async restart(id: number): Promise<void> {
    const n = this.node(id);
    this.earlierOutput[id - 1] +=
      `${n.output}\n===== [chaos] node ${id} restarted at ${new Date().toISOString()}\n`;
    await n.restart();
    this.state[id - 1] = 'running';
  }

  pause(id: number): void {
    this.state[id - 1] = 'paused';
    this.node(id).signal('SIGSTOP');
  }

  resume(id: number): void {
    this.node(id).signal('SIGCONT');
    this.state[id - 1] = 'running';
  }

  /** Removes every network partition, resumes every paused node and restarts every dead one. */
  async heal(): Promise<void> {
    this.proxy.heal();
    for (const d of this.disks) await d.free();
    for (let id = 1; id <= NODES; id++) {
      const n = this.node(id);
      if (this.state[id - 1] === 'paused') this.resume(id);
      if (!n.running) await this.restart(id);
      this.state[id - 1] = 'running';
    }
  }

  /** The topic's partitions as one node sees them (null if it does not answer in time). */
  async metadataFrom(id: number, topic: string): Promise<PartitionState[] | null> {
    if (this.state[id - 1] !== 'running') return null;
    let client: WireClient | undefined;
    try {
      client = await withTimeout(WireClient.connect(this.portOf(id)), PROBE_TIMEOUT_MS, 'connect');
      const c = client;
      const res = await withTimeout(
        c.request(ApiKey.Metadata, 12, {
          topics: [{ name: topic }],
          allowAutoTopicCreation: false,
          includeTopicAuthorizedOperations: false,
        }),
        PROBE_TIMEOUT_MS,
        'metadata',
        () => c.close(),
      );
      const t = res.topics.find((x) => x.name === topic);
      if (!t || t.errorCode !== 0) return null;
      return t.partitions
        .map((p) => ({
          partition: p.partitionIndex,
          leader: p.leaderId,
          leaderEpoch: p.leaderEpoch,
          isr: [...p.isrNodes].sort(),
        }))
        .sort((a, b) => a.partition - b.partition);
    } catch {
      return null;
    } finally {
      client?.close();
    }
  }

  /** The first answer among running nodes, tried in the given order. */
  async metadata(topic: string, order: number[] = [1, 2, 3]): Promise<PartitionState[] | null> {
    for (const id of order) {
      const m = await this.metadataFrom(id, topic);
      if (m) return m;
    }
    return null;
  }

  /**
   * True when every node answers, all agree that every one of `partitions` partitions has a
   * leader and all NODES replicas in its ISR, and each leader answers as the leader.
   */
  async healthy(topic: string, partitions: number): Promise<boolean> {
    const views = await Promise.all(this.nodes.map((_, i) => this.metadataFrom(i + 1, topic)));
    const first = views[0];
    if (!first || first.length !== partitions) return false;
    for (const v of views) {
      if (!v || JSON.stringify(v) !== JSON.stringify(first)) return false;
    }
    if (!first.every((p) => p.leader > 0 && p.isr.length === NODES)) return false;
    // Agreeing views can still be stale (a leader that has just restarted, not yet fenced): each
    // leader must also answer a leader-only request for its partition.
    for (const p of first) {
      try {
        const r = await withTimeout(
          listOffsetFull(this.portOf(p.leader), topic, p.partition, -1),
          PROBE_TIMEOUT_MS,
          'ListOffsets',
        );
        if (r.errorCode !== 0) return false;
      } catch {
        return false;
      }
    }
    return true;
  }

  /** Waits for healthy(); returns how long it took, or null on timeout. */
  async waitHealthy(topic: string, partitions: number, timeoutMs: number): Promise<number | null> {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (await this.healthy(topic, partitions)) return Date.now() - t0;
      await sleep(250);
    }
    return null;
  }

  /** Every record of a partition from offset 0 to its high watermark, read from its leader. */
  async drain(
    topic: string,
    partition: number,
  ): Promise<{ leader: number; highWatermark: number; records: FinalRecord[] }> {
    let last: unknown;
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        const m = await this.metadata(topic);
        const leader = m?.find((p) => p.partition === partition)?.leader ?? -1;
        if (leader <= 0) throw new Error(`partition ${partition} has no leader`);
        const contents = await withTimeout(
          readPartition(this.portOf(leader), topic, partition, { fromOffset: 0 }),
          30_000,
          `drain of ${topic}-${partition}`,
        );
        return {
          leader,
          highWatermark: contents.highWatermark,
          records: contents.records.map((r) => ({
            offset: r.offset,
            value: r.value?.toString() ?? '',
            producerId: r.producerId,
            sequence: r.baseSequence < 0 ? -1 : r.baseSequence + (r.offset - r.batchBaseOffset),
          })),
        };
      } catch (e) {
        last = e;
        await sleep(500);
      }
    }
    throw new Error(`could not drain ${topic}-${partition}: ${(last as Error).message}`);
  }

  /** Everything node `id` printed, over all its processes. */
  log(id: number): string {
    return this.earlierOutput[id - 1] + this.node(id).output;
  }

  /** The last `chars` characters of every node's output, for a report. */
  tails(chars = 4_000): string {
    return this.nodes
      .map((_, i) => `--- node ${i + 1} (${this.state[i]})\n${this.log(i + 1).slice(-chars)}`)
      .join('\n');
  }

  async destroy(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        n.signal('SIGCONT');
        await n.destroy();
      }),
    );
    await this.proxy.closeAll();
    for (const d of this.disks) d.unmount();
  }
}
