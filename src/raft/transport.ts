/**
 * RaftTransport: RaftMessages over TCP between quorum voters, on the "controller" listener
 * (separate from the Kafka listener, as KRaft's controller.listener.names is).
 *
 * Framing: u32 length | payload (codec.ts), length <= frameBytesMax. The first frame a connecting
 * node sends is a Hello (node id, cluster id); after it, every frame is one RaftMessage whose
 * `from` must be that node and whose `to` must be us.
 *
 * Outbound: one connection per peer, opened lazily and kept; on error it is closed and reopened
 * after an exponential backoff with jitter (reset by a successful connect). Each peer has a
 * bounded send queue; when it is full new messages are dropped and counted — Raft tolerates loss,
 * and a slow or dead peer must not make us buffer without bound. When a connection closes or a
 * connect fails, its queue is dropped too (as etcd's transport does): a burst of stale messages
 * after a reconnect helps nobody, and Raft's heartbeats and probes resend what is still needed.
 * Messages sent while the (re)connect is pending wait for it.
 *
 * Inbound: any number of connections. A frame that is too large, a bad Hello, a message that does
 * not decode or claims another sender closes that connection only; the node carries on.
 */

import * as net from 'node:net';
import { decodeHello, decodeMessage, encodeHello, encodeMessage } from './codec.js';
import type { NodeId } from './log.js';
import type { RaftMessage } from './messages.js';

export interface PeerAddress {
  readonly id: NodeId;
  readonly host: string;
  readonly port: number;
}

export interface RaftTransportOptions {
  readonly nodeId: NodeId;
  /** Where to listen; port 0 picks a free one (see `port` after start()). */
  readonly listen: { readonly host: string; readonly port: number };
  readonly peers: readonly PeerAddress[];
  readonly onMessage: (m: RaftMessage) => void;
  readonly clusterId?: string;
  readonly logger?: { warn(msg: string): void };
  /** Largest frame accepted or sent (default 16 MiB). */
  readonly frameBytesMax?: number;
  /** Messages queued per peer beyond which new ones are dropped (default 1024). */
  readonly sendQueueMax?: number;
  readonly reconnectBackoffMs?: { readonly min: number; readonly max: number };
  readonly connectTimeoutMs?: number;
  /** Local IP outbound connections come from (node.local.address); default: the OS's choice. */
  readonly localAddress?: string;
}

export interface TransportStats {
  sent: number;
  received: number;
  dropped: number;
  connectionsOpened: number;
  connectionsRejected: number;
}

/** Cuts a byte stream into frames; `null` from push() means the stream is malformed. */
class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  constructor(private readonly frameBytesMax: number) {}

  /** Returns complete frames, or an error message. */
  push(chunk: Buffer): Buffer[] | string {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    while (this.buffered >= 4) {
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len > this.frameBytesMax) return `frame of ${len} bytes exceeds ${this.frameBytesMax}`;
      if (this.buffered < 4 + len) break;
      this.consume(4);
      frames.push(this.consume(len));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all.subarray(0, n);
  }

  private consume(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    let first = this.chunks[0]!;
    if (first.length < n) {
      first = Buffer.concat(this.chunks);
      this.chunks = [first];
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

function frame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(payload.length, 0);
  payload.copy(out, 4);
  return out;
}

class PeerLink {
  private socket: net.Socket | undefined;
  private connected = false;
  private queue: Buffer[] = [];
  private backoffMs: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly t: RaftTransport,
    readonly peer: PeerAddress,
  ) {
    this.backoffMs = t.backoff.min;
  }

  send(framed: Buffer): boolean {
    if (this.stopped) return false;
    if (this.queue.length >= this.t.sendQueueMax) return false;
    this.queue.push(framed);
    if (this.connected) this.flush();
    else if (this.socket === undefined && this.reconnectTimer === undefined) this.connect();
    return true;
  }

  private connect(): void {
    if (this.stopped) return;
    const s = net.connect({ host: this.peer.host, port: this.peer.port, localAddress: this.t.localAddress });
    this.socket = s;
    s.setNoDelay(true);
    s.setTimeout(this.t.connectTimeoutMs);
    s.on('connect', () => {
      s.setTimeout(0);
      this.connected = true;
      this.backoffMs = this.t.backoff.min;
      this.t.stats.connectionsOpened++;
      s.write(frame(encodeHello({ nodeId: this.t.nodeId, clusterId: this.t.clusterId })));
      this.flush();
    });
    s.on('timeout', () => s.destroy(new Error('connect timeout')));
    s.on('drain', () => this.flush());
    // Peers never send on our outbound connection; anything arriving is ignored.
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => {
      if (this.socket !== s) return;
      this.socket = undefined;
      this.connected = false;
      // What was queued is stale by the time we reconnect; the leader's heartbeats and probes
      // regenerate whatever is still needed. Delivering it late would only be noise.
      this.t.stats.dropped += this.queue.length;
      this.queue = [];
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer !== undefined) return;
    const delay = this.backoffMs * (0.5 + Math.random() * 0.5);
    this.backoffMs = Math.min(this.t.backoff.max, this.backoffMs * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      // Reconnect only when there is something to say; the next send() reconnects otherwise.
      if (this.queue.length > 0) this.connect();
    }, delay);
    this.reconnectTimer.unref?.();
  }

  private flush(): void {
    const s = this.socket;
    if (s === undefined || !this.connected) return;
    while (this.queue.length > 0) {
      const f = this.queue.shift()!;
      this.t.stats.sent++;
      if (!s.write(f)) return; // resume on 'drain'
    }
  }

  get queued(): number {
    return this.queue.length;
  }

  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.queue = [];
    this.socket?.destroy();
    this.socket = undefined;
  }
}

export class RaftTransport {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  readonly frameBytesMax: number;
  readonly sendQueueMax: number;
  readonly backoff: { readonly min: number; readonly max: number };
  readonly connectTimeoutMs: number;
  readonly localAddress: string | undefined;
  readonly stats: TransportStats = {
    sent: 0,
    received: 0,
    dropped: 0,
    connectionsOpened: 0,
    connectionsRejected: 0,
  };
  private readonly options: RaftTransportOptions;
  private readonly logger: { warn(msg: string): void };
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<net.Socket>();
  private server: net.Server | undefined;
  private boundPort = 0;
  private stopped = false;

  constructor(options: RaftTransportOptions) {
    this.options = options;
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId ?? 'sluice';
    this.frameBytesMax = options.frameBytesMax ?? 16 * 1024 * 1024;
    this.sendQueueMax = options.sendQueueMax ?? 1024;
    this.backoff = options.reconnectBackoffMs ?? { min: 50, max: 2000 };
    this.connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    this.localAddress = options.localAddress;
    this.logger = options.logger ?? { warn: (msg) => console.warn(msg) };
    for (const p of options.peers) {
      if (p.id !== options.nodeId) this.links.set(p.id, new PeerLink(this, p));
    }
  }

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    const server = net.createServer((s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.listen.port, this.options.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.warn(`[raft transport ${this.nodeId}] listener: ${err.message}`));
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr !== null ? addr.port : this.options.listen.port;
  }

  /** Queues a message for its peer; false when dropped (unknown peer, queue full, stopped). */
  send(m: RaftMessage): boolean {
    const link = this.links.get(m.to);
    if (link === undefined || this.stopped) {
      this.stats.dropped++;
      return false;
    }
    const payload = encodeMessage(m);
    if (payload.length > this.frameBytesMax) {
      this.logger.warn(
        `[raft transport ${this.nodeId}] ${m.type} of ${payload.length} bytes exceeds the frame limit`,
      );
      this.stats.dropped++;
      return false;
    }
    if (!link.send(frame(payload))) {
      this.stats.dropped++;
      return false;
    }
    return true;
  }

  queued(peer: NodeId): number {
    return this.links.get(peer)?.queued ?? 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const l of this.links.values()) l.stop();
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(s: net.Socket): void {
    if (this.stopped) {
      s.destroy();
      return;
    }
    this.inbound.add(s);
    s.setNoDelay(true);
    const reader = new FrameReader(this.frameBytesMax);
    let peer: NodeId | undefined;
    const reject = (why: string) => {
      this.stats.connectionsRejected++;
      this.logger.warn(
        `[raft transport ${this.nodeId}] closing connection from ${s.remoteAddress}:${s.remotePort}` +
          `${peer === undefined ? '' : ` (node ${peer})`}: ${why}`,
      );
      s.destroy();
    };
    s.on('data', (chunk: Buffer) => {
      if (s.destroyed) return;
      const frames = reader.push(chunk);
      if (typeof frames === 'string') return reject(frames);
      for (const f of frames) {
        if (s.destroyed) return;
        let m: RaftMessage;
        try {
          if (peer === undefined) {
            const hello = decodeHello(f);
            if (hello.clusterId !== this.clusterId) {
              return reject(
                `cluster id ${JSON.stringify(hello.clusterId)} is not ${JSON.stringify(this.clusterId)}`,
              );
            }
            if (!this.links.has(hello.nodeId)) return reject(`node ${hello.nodeId} is not a voter`);
            peer = hello.nodeId;
            continue;
          }
          m = decodeMessage(f);
        } catch (err) {
          return reject((err as Error).message);
        }
        if (m.from !== peer || m.to !== this.nodeId) {
          return reject(`message ${m.from} → ${m.to} on a connection from node ${peer}`);
        }
        this.stats.received++;
        // The receiver's own failures are its business, not the connection's.
        this.options.onMessage(m);
      }
    });
    s.on('error', () => {});
    s.on('close', () => this.inbound.delete(s));
  }
}
