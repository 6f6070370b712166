/**
 * Network partitions between the nodes of a chaos cluster, made by a fault-injecting TCP proxy
 * (issue 7 allows a proxy or network namespaces; this needs no privileges, so it runs in CI too).
 *
 * Every node listens on its own Kafka and controller ports, but what the cluster knows of a node
 * (its advertised listener, its `controller.quorum.voters` entry) is a proxy port in front of it.
 * Each node's connections to the other nodes come from a loopback IP of its own
 * (`node.local.address=127.0.0.<10+id>`), so the proxy knows which node a connection comes from.
 * Clients and the harness's probes come from 127.0.0.1 and are never cut.
 *
 * A cut between nodes a and b acts like a firewall that drops packets, not one that refuses
 * them: connections between them (either way) stop forwarding and their bytes are thrown away,
 * and new ones are accepted but never reach the other node, so both ends see silence and have to
 * rely on their timeouts. Healing closes the connections that were frozen (their byte streams
 * have holes), and the nodes reconnect.
 *
 * A block is narrower: only connections that node a opens to one listener of node b freeze (for
 * example a follower's replica fetches from its leader, while its Raft traffic still flows). The
 * unclean-election scenario uses it to shrink an ISR to its leader without losing the quorum.
 */

import net from 'node:net';

/** The loopback IP a node's connections to other nodes come from. */
export function nodeSourceIp(nodeId: number): string {
  return `127.0.0.${10 + nodeId}`;
}

/** The node a source IP belongs to (0: not a node, i.e. a client or the harness). */
function nodeOfIp(ip: string | undefined): number {
  const m = /^(?:::ffff:)?127\.0\.0\.(\d+)$/.exec(ip ?? '');
  const n = m ? Number(m[1]) - 10 : 0;
  return n > 0 ? n : 0;
}

export type Listener = 'kafka' | 'controller';

interface Proxied {
  from: number;
  to: number;
  listener: Listener;
  downstream: net.Socket;
  upstream: net.Socket | null;
  /** Set while a cut separates `from` and `to`: bytes are dropped both ways. */
  frozen: boolean;
}

export interface ProxyStats {
  connections: number;
  /** Connections frozen by a cut (and reset when it healed). */
  frozen: number;
  droppedBytes: number;
}

const linkKey = (a: number, b: number) => (a < b ? `${a}-${b}` : `${b}-${a}`);
const blockKey = (from: number, to: number, listener: Listener) => `${from}>${to}:${listener}`;

export class PartitionProxy {
  private readonly servers: net.Server[] = [];
  private readonly conns = new Set<Proxied>();
  private readonly cuts = new Set<string>();
  private readonly blocks = new Set<string>();
  readonly stats: ProxyStats = { connections: 0, frozen: 0, droppedBytes: 0 };

  /** Listens on `listenPort` (127.0.0.1) and forwards to node `to` at `target`. */
  async front(
    to: number,
    listener: Listener,
    listenPort: number,
    target: { host: string; port: number },
  ): Promise<void> {
    const server = net.createServer((s) => this.accept(s, to, listener, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPort, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.servers.push(server);
  }

  isCut(a: number, b: number): boolean {
    return a !== b && a > 0 && b > 0 && this.cuts.has(linkKey(a, b));
  }

  private severed(c: { from: number; to: number; listener: Listener }): boolean {
    return this.isCut(c.from, c.to) || this.blocks.has(blockKey(c.from, c.to, c.listener));
  }

  /** The links cut and connections blocked now, e.g. ["1-2", "1-3", "2>1:kafka"]. */
  get cutLinks(): string[] {
    return [...this.cuts, ...this.blocks].sort();
  }

  /** Freezes the connections `from` opens to `to`'s `listener` (one direction, one listener). */
  block(from: number, to: number, listener: Listener): void {
    this.blocks.add(blockKey(from, to, listener));
    this.freezeSevered();
  }

  private freezeSevered(): void {
    for (const c of this.conns) {
      if (!c.frozen && this.severed(c)) {
        c.frozen = true;
        this.stats.frozen++;
      }
    }
  }

  /** Cuts nodes a and b apart (both directions); their open connections freeze. */
  cut(a: number, b: number): void {
    if (a === b) return;
    this.cuts.add(linkKey(a, b));
    this.freezeSevered();
  }

  /** Cuts `node` off from every other node in `all`. */
  isolate(node: number, all: number[]): void {
    for (const other of all) this.cut(node, other);
  }

  /** Removes every cut and block and resets the connections that were frozen. */
  heal(): void {
    this.cuts.clear();
    this.blocks.clear();
    for (const c of this.conns) {
      if (c.frozen) this.close(c);
    }
  }

  async closeAll(): Promise<void> {
    for (const c of this.conns) this.close(c);
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  private close(c: Proxied): void {
    c.downstream.destroy();
    c.upstream?.destroy();
    this.conns.delete(c);
  }

  private accept(
    downstream: net.Socket,
    to: number,
    listener: Listener,
    target: { host: string; port: number },
  ): void {
    const from = nodeOfIp(downstream.remoteAddress);
    const c: Proxied = { from, to, listener, downstream, upstream: null, frozen: false };
    this.conns.add(c);
    this.stats.connections++;
    downstream.setNoDelay(true);
    downstream.on('error', () => {});
    downstream.on('close', () => this.close(c));
    if (this.severed(c)) {
      // Accepted, but the other side never hears of it: the client's connect succeeds and then
      // nothing comes back, as when the SYN-ACK came from a middlebox.
      c.frozen = true;
      this.stats.frozen++;
      downstream.on('data', (b: Buffer) => {
        this.stats.droppedBytes += b.length;
      });
      return;
    }
    const upstream = net.connect({ host: target.host, port: target.port });
    c.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => {});
    upstream.on('close', () => this.close(c));
    this.forward(c, downstream, upstream);
    this.forward(c, upstream, downstream);
  }

  /** Copies `src` to `dst` with backpressure, dropping everything while `c` is frozen. */
  private forward(c: Proxied, src: net.Socket, dst: net.Socket): void {
    src.on('data', (b: Buffer) => {
      if (c.frozen) {
        this.stats.droppedBytes += b.length;
        return;
      }
      if (!dst.write(b)) {
        src.pause();
        dst.once('drain', () => src.resume());
      }
    });
  }
}
