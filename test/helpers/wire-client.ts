/**
 * A minimal Kafka wire client for tests, over a plain net.Socket, built on the generated codec:
 * encodes requests (header v1/v2 by the API's flexible versions), reads size-prefixed response
 * frames in arrival order, and decodes them (response header v0/v1; ApiVersions always v0).
 * Also exposes the raw frame stream so protocol tests can send arbitrary bytes.
 */

import net from 'node:net';
import type { Encodable } from '../../src/protocol/codec-support.js';
import { ApiKey, type ApiTypes, apiCodecs } from '../../src/protocol/generated/index.js';
import { encodeRequestHeader } from '../../src/protocol/generated/request-header.js';
import { Reader, Writer } from '../../src/protocol/primitives.js';

type Key = keyof ApiTypes & keyof typeof apiCodecs;
export type Req<K extends Key> = ApiTypes[K][0];
export type Res<K extends Key> = ApiTypes[K][1];

export function requestHeaderVersion(apiKey: number, version: number): number {
  const codec = (apiCodecs as Record<number, { flexibleMin: number }>)[apiKey]!;
  return codec.flexibleMin >= 0 && version >= codec.flexibleMin ? 2 : 1;
}

export function responseHeaderVersion(apiKey: number, version: number): number {
  if (apiKey === ApiKey.ApiVersions) return 0;
  const codec = (apiCodecs as Record<number, { flexibleMin: number }>)[apiKey]!;
  return codec.flexibleMin >= 0 && version >= codec.flexibleMin ? 1 : 0;
}

/** A complete request frame (size prefix included). */
export function encodeRequestFrame<K extends Key>(
  apiKey: K,
  version: number,
  correlationId: number,
  body: Encodable<Req<K>>,
  clientId = 'sluice-it',
): Buffer {
  const w = new Writer(256);
  w.int32(0);
  encodeRequestHeader(
    w,
    { requestApiKey: apiKey, requestApiVersion: version, correlationId, clientId },
    requestHeaderVersion(apiKey, version),
  );
  (apiCodecs[apiKey].encodeRequest as (w: Writer, v: unknown, version: number) => void)(w, body, version);
  const buf = w.toBuffer();
  buf.writeInt32BE(buf.length - 4, 0);
  return buf;
}

/** Decodes a response frame body (without size prefix). */
export function decodeResponseFrame<K extends Key>(
  apiKey: K,
  version: number,
  frame: Buffer,
): { correlationId: number; body: Res<K> } {
  const r = new Reader(frame);
  const correlationId = r.int32();
  if (responseHeaderVersion(apiKey, version) >= 1) r.taggedFields();
  const body = apiCodecs[apiKey].decodeResponse(r, version) as Res<K>;
  return { correlationId, body };
}

export class WireClient {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly frames: Buffer[] = [];
  private waiters: ((f: Buffer | null) => void)[] = [];
  private nextCorrelationId = 1;
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (c: Buffer) => this.onData(c));
    this.closedPromise = new Promise((res) => {
      socket.on('close', () => {
        this.closed = true;
        for (const w of this.waiters) w(null);
        this.waiters = [];
        res();
      });
    });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<WireClient> {
    return new Promise((res, rej) => {
      const s = net.connect(port, host);
      s.once('connect', () => {
        s.off('error', rej);
        res(new WireClient(s));
      });
      s.once('error', rej);
    });
  }

  private onData(c: Buffer): void {
    this.chunks.push(c);
    this.buffered += c.length;
    while (this.buffered >= 4) {
      let all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [all];
      const size = all.readInt32BE(0);
      if (this.buffered < 4 + size) break;
      const frame = all.subarray(4, 4 + size);
      all = all.subarray(4 + size);
      this.chunks = all.length ? [all] : [];
      this.buffered -= 4 + size;
      const w = this.waiters.shift();
      if (w) w(frame);
      else this.frames.push(frame);
    }
  }

  /** The next response frame body, or null if the connection closed first. */
  nextFrame(timeoutMs = 10_000): Promise<Buffer | null> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    if (this.closed) return Promise.resolve(null);
    return new Promise((res, rej) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        rej(new Error(`no response frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (fr: Buffer | null) => {
        clearTimeout(t);
        res(fr);
      };
      this.waiters.push(waiter);
    });
  }

  /** Number of frames received but not yet taken. */
  get pendingFrames(): number {
    return this.frames.length;
  }

  write(buf: Buffer): void {
    this.socket.write(buf);
  }

  correlationId(): number {
    return this.nextCorrelationId++;
  }

  /** Sends a request and returns its decoded response (responses are taken in order). */
  async request<K extends Key>(apiKey: K, version: number, body: Encodable<Req<K>>): Promise<Res<K>> {
    const cid = this.correlationId();
    this.write(encodeRequestFrame(apiKey, version, cid, body));
    const frame = await this.nextFrame();
    if (!frame)
      throw new Error(`connection closed before the response to ${apiCodecs[apiKey].name} v${version}`);
    const { correlationId, body: res } = decodeResponseFrame(apiKey, version, frame);
    if (correlationId !== cid) throw new Error(`expected correlation id ${cid}, got ${correlationId}`);
    return res;
  }

  close(): void {
    this.socket.destroy();
  }
}
