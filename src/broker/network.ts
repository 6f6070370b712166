/**
 * The broker's network layer: TCP connections carrying size-prefixed Kafka frames.
 *
 * Invariants:
 * - A frame larger than socket.request.max.bytes, or one that does not decode, closes that
 *   connection only, with one log line; nothing a client sends can throw out of this layer.
 * - Many requests may be in flight on one connection; responses are written in request order
 *   (Kafka clients rely on it). Requests that need no response (Produce acks=0) leave no slot.
 * - Memory per connection is bounded: reading pauses while more than
 *   maxInflightRequestsPerConnection requests, or queued.max.request.bytes of request bytes, are
 *   being processed, and resumes when they drain. Sockets under write backpressure pause too.
 * - max.connections and max.connections.per.ip close new connections beyond the limit.
 */

import net from 'node:net';
import { DecodeError, Reader, Writer } from '../protocol/primitives.js';
import { fetchReadBuffers } from '../storage/read-buffer-pool.js';

export interface FrameHandler {
  /**
   * Handles one request frame (the bytes after the size prefix). Returns the encoded response
   * frame body (without size prefix) as buffers to write in order, or null when no response is due. Throwing DecodeError (or
   * any error) closes the connection.
   */
  handleFrame(frame: Buffer, conn: ConnectionInfo): Promise<Buffer[] | null>;
}

export interface ConnectionInfo {
  id: number;
  remoteAddress: string;
  remotePort: number;
}

export interface NetworkLimits {
  socketRequestMaxBytes: number;
  queuedMaxRequestBytes: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxInflightRequestsPerConnection: number;
}

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

interface Slot {
  done: boolean;
  response: Buffer[] | null;
}

class Connection {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly slots: Slot[] = [];
  private inflightBytes = 0;
  private paused = false;
  private closed = false;

  constructor(
    private readonly socket: net.Socket,
    readonly info: ConnectionInfo,
    private readonly handler: FrameHandler,
    private readonly limits: NetworkLimits,
    private readonly log: Logger,
    private readonly onClose: () => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.maybeResume());
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      const head = this.peek(4);
      const size = head.readInt32BE(0);
      if (size < 0 || size > this.limits.socketRequestMaxBytes) {
        this.log.warn(
          `closing connection ${this.describe()}: frame of ${size} bytes exceeds socket.request.max.bytes (${this.limits.socketRequestMaxBytes})`,
        );
        this.close();
        return;
      }
      if (this.buffered < 4 + size) break;
      const frame = this.take(4 + size).subarray(4);
      this.dispatch(frame);
      if (this.closed) return;
    }
    this.maybePause();
  }

  /** Returns the first n buffered bytes without consuming them. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first;
    const merged = Buffer.concat(this.chunks);
    this.chunks = [merged];
    return merged;
  }

  private take(n: number): Buffer {
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

  private dispatch(frame: Buffer): void {
    const slot: Slot = { done: false, response: null };
    this.slots.push(slot);
    this.inflightBytes += frame.length;
    this.handler.handleFrame(frame, this.info).then(
      (response) => {
        this.inflightBytes -= frame.length;
        slot.done = true;
        slot.response = response;
        this.flush();
      },
      (err: unknown) => {
        this.inflightBytes -= frame.length;
        const why =
          err instanceof DecodeError
            ? `malformed request: ${err.message}`
            : `request failed: ${(err as Error)?.stack ?? err}`;
        this.log.warn(`closing connection ${this.describe()}: ${why}`);
        this.close();
      },
    );
  }

  /** Writes completed responses in request order. */
  private flush(): void {
    if (this.closed) return;
    let wrote = false;
    while (this.slots.length > 0 && this.slots[0]!.done) {
      const slot = this.slots.shift()!;
      if (slot.response) {
        if (!wrote) this.socket.cork();
        wrote = true;
        let length = 0;
        for (const part of slot.response) length += part.length;
        const size = Buffer.allocUnsafe(4);
        size.writeInt32BE(length, 0);
        this.socket.write(size);
        for (const part of slot.response) {
          // A chunk read into a pooled buffer (Fetch records) goes back to the pool once the socket
          // is done with it; on error the write may still be pending, so it is left to the GC.
          if (fetchReadBuffers.isLeased(part)) {
            this.socket.write(part, (err) => {
              if (!err) fetchReadBuffers.release(part);
            });
          } else {
            this.socket.write(part);
          }
        }
      }
    }
    if (wrote) process.nextTick(() => this.socket.uncork());
    this.maybeResume();
  }

  private overLimit(): boolean {
    return (
      this.slots.length >= this.limits.maxInflightRequestsPerConnection ||
      this.inflightBytes >= this.limits.queuedMaxRequestBytes ||
      this.socket.writableNeedDrain
    );
  }

  private maybePause(): void {
    if (!this.paused && this.overLimit()) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private maybeResume(): void {
    if (this.paused && !this.overLimit() && !this.closed) {
      this.paused = false;
      this.socket.resume();
      // Frames already buffered are processed on the next data event; process them now too.
      if (this.buffered >= 4) this.onData(Buffer.alloc(0));
    }
  }

  private describe(): string {
    return `${this.info.id} from ${this.info.remoteAddress}:${this.info.remotePort}`;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.slots.length = 0;
    this.chunks = [];
    this.socket.destroy();
    this.onClose();
  }
}

export class NetworkServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly perIp = new Map<string, number>();
  private nextId = 1;

  constructor(
    private readonly handler: FrameHandler,
    private readonly limits: NetworkLimits,
    private readonly log: Logger,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  private accept(socket: net.Socket): void {
    const ip = socket.remoteAddress ?? 'unknown';
    const ipCount = this.perIp.get(ip) ?? 0;
    if (this.connections.size >= this.limits.maxConnections || ipCount >= this.limits.maxConnectionsPerIp) {
      this.log.warn(`refusing connection from ${ip}: max.connections or max.connections.per.ip reached`);
      socket.destroy();
      return;
    }
    this.perIp.set(ip, ipCount + 1);
    const info: ConnectionInfo = { id: this.nextId++, remoteAddress: ip, remotePort: socket.remotePort ?? 0 };
    const conn: Connection = new Connection(socket, info, this.handler, this.limits, this.log, () => {
      this.connections.delete(conn);
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, n);
    });
    this.connections.add(conn);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  listen(port: number, host: string): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address() as net.AddressInfo;
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  async close(): Promise<void> {
    for (const c of [...this.connections]) c.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Reads the api key and version that open every request header (for routing before decoding). */
export function peekApiKeyVersion(frame: Buffer): {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
} {
  const r = new Reader(frame);
  const apiKey = r.int16();
  const apiVersion = r.int16();
  const correlationId = r.int32();
  return { apiKey, apiVersion, correlationId };
}

export { Writer };
