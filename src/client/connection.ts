/**
 * One TCP connection to one broker. It owns framing (int32 size prefix), correlation ids, the
 * table of requests in flight, per-request timeouts and API version negotiation.
 *
 * Invariants:
 * - Many requests may be in flight; each response is matched to its request by correlation id
 *   (never by arrival order), so a late response to a timed-out request is dropped harmlessly.
 * - Right after connecting, ApiVersions is exchanged (KIP-511 fallback to v0 when the broker does
 *   not know our ApiVersions version); every later request uses the highest version both sides
 *   support, unless the caller pins one.
 * - Header versions follow the dispatcher's rules: request header v2 for flexible versions, else
 *   v1; response header v1 for flexible versions, else v0 — except ApiVersions, always v0.
 * - Once closed (by us, the peer or an error) every pending request is rejected and no new one
 *   is accepted; callers make a new Connection.
 */

import net from 'node:net';
import type { Encodable } from '../protocol/codec-support.js';
import { ErrorCode } from '../protocol/errors.js';
import { type ApiCodec, ApiKey, type ApiTypes, apiCodecs } from '../protocol/generated/index.js';
import { encodeRequestHeader } from '../protocol/generated/request-header.js';
import { Reader, Writer } from '../protocol/primitives.js';
import {
  BrokerNotAvailableError,
  ConnectionClosedError,
  RequestTimeoutError,
  SluiceClientError,
  UnsupportedVersionError,
} from './errors.js';

export type RequestOf<K extends keyof ApiTypes> = ApiTypes[K][0];
export type ResponseOf<K extends keyof ApiTypes> = ApiTypes[K][1];

export interface ConnectionOptions {
  host: string;
  port: number;
  clientId?: string;
  /** How long a request may wait for its response (Fetch adds its maxWaitMs). Default 30 s. */
  requestTimeoutMs?: number;
  /** How long the TCP connect + ApiVersions exchange may take. Default 10 s. */
  connectTimeoutMs?: number;
  /** Largest response frame accepted; a bigger size prefix means a broken stream. Default 256 MiB. */
  responseBytesMax?: number;
  /** Local IP the connection comes from (net.connect's localAddress); default: the OS's choice. */
  localAddress?: string;
}

export interface SendOptions {
  /** Pin a version instead of the negotiated one. */
  version?: number;
  /** False for requests the broker does not answer (Produce acks=0). Default true. */
  expectResponse?: boolean;
  timeoutMs?: number;
}

interface Pending {
  apiKey: number;
  version: number;
  resolve: (frame: Buffer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface ApiVersionRange {
  minVersion: number;
  maxVersion: number;
}

const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ECONNRESET',
]);

function codecOf(apiKey: number): ApiCodec<unknown, unknown> | undefined {
  return (apiCodecs as unknown as Record<number, ApiCodec<unknown, unknown>>)[apiKey];
}

function isFlexible(codec: ApiCodec<unknown, unknown>, version: number): boolean {
  return codec.flexibleMin >= 0 && version >= codec.flexibleMin;
}

export class Connection {
  readonly host: string;
  readonly port: number;
  readonly clientId: string;
  readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly responseBytesMax: number;
  private readonly localAddress: string | undefined;
  private socket: net.Socket | null = null;
  private nextCorrelationId = 1;
  private readonly pending = new Map<number, Pending>();
  private chunks: Buffer[] = [];
  private buffered = 0;
  private closedError: Error | null = null;
  /** Negotiated version per api key (only APIs both sides speak). */
  private readonly versions = new Map<number, number>();
  /** What the broker advertised, for diagnostics. */
  readonly brokerApis = new Map<number, ApiVersionRange>();

  constructor(options: ConnectionOptions) {
    this.host = options.host;
    this.port = options.port;
    this.clientId = options.clientId ?? 'sluice';
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.responseBytesMax = options.responseBytesMax ?? 256 * 1024 * 1024;
    this.localAddress = options.localAddress;
  }

  /** Opens a connection and negotiates API versions. */
  static async connect(options: ConnectionOptions): Promise<Connection> {
    const c = new Connection(options);
    await c.open();
    return c;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get isOpen(): boolean {
    return this.socket !== null && this.closedError === null;
  }

  private async open(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: this.host, port: this.port, localAddress: this.localAddress });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new BrokerNotAvailableError(this.host, this.port, {
            cause: new Error(`connect timed out after ${this.connectTimeoutMs} ms`),
          }),
        );
      }, this.connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        this.attach(socket);
        resolve();
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        if (err.code && CONNECT_ERRORS.has(err.code))
          reject(new BrokerNotAvailableError(this.host, this.port, { cause: err }));
        else
          reject(
            new ConnectionClosedError(`cannot connect to ${this.address}: ${err.message}`, { cause: err }),
          );
      });
    });
    try {
      await this.negotiateVersions();
    } catch (err) {
      this.close();
      throw err;
    }
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) =>
      this.fail(
        new ConnectionClosedError(`connection to ${this.address} failed: ${err.message}`, { cause: err }),
      ),
    );
    socket.on('close', () => this.fail(new ConnectionClosedError(`connection to ${this.address} closed`)));
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      const head = this.chunks[0]!.length >= 4 ? this.chunks[0]! : Buffer.concat(this.chunks);
      const size = head.readInt32BE(0);
      if (size < 4 || size > this.responseBytesMax) {
        this.fail(
          new ConnectionClosedError(
            `broker at ${this.address} sent a frame of ${size} bytes; closing the connection`,
          ),
        );
        this.socket?.destroy();
        return;
      }
      if (this.buffered < 4 + size) return;
      // One concat per frame (not per chunk) keeps large fetch responses linear in their size.
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
      const frame = all.subarray(4, 4 + size);
      const rest = all.subarray(4 + size);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Buffer): void {
    const correlationId = frame.readInt32BE(0);
    const p = this.pending.get(correlationId);
    if (!p) return; // a response to a request that already timed out
    this.pending.delete(correlationId);
    clearTimeout(p.timer);
    p.resolve(frame);
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
    this.socket?.destroy();
  }

  /** Closes the connection; pending requests fail with ConnectionClosedError. */
  close(): void {
    this.fail(
      new ConnectionClosedError(`connection to ${this.address} was closed by the client`, {
        canRetry: false,
      }),
    );
  }

  /** The version this connection uses for an API; throws if the broker serves none we speak. */
  versionFor(apiKey: number): number {
    const v = this.versions.get(apiKey);
    if (v === undefined) {
      const name = codecOf(apiKey)?.name ?? `api ${apiKey}`;
      throw new UnsupportedVersionError(
        `the broker at ${this.address} does not support ${name} in any version this client speaks`,
      );
    }
    return v;
  }

  supports(apiKey: number): boolean {
    return this.versions.has(apiKey);
  }

  /**
   * Sends a request with the negotiated (or given) version and decodes the response. With
   * `expectResponse: false` it resolves once the bytes are handed to the socket, with undefined.
   */
  async send<K extends keyof ApiTypes>(
    apiKey: K,
    request: Encodable<RequestOf<K>>,
    options: SendOptions = {},
  ): Promise<ResponseOf<K>> {
    const codec = codecOf(apiKey)!;
    const version = options.version ?? this.versionFor(apiKey);
    const frame = await this.sendFrame(
      apiKey,
      version,
      (w) => codec.encodeRequest(w, request, version),
      options,
    );
    if (frame === null) return undefined as unknown as ResponseOf<K>;
    const r = new Reader(frame, 4);
    if (apiKey !== ApiKey.ApiVersions && isFlexible(codec, version)) r.taggedFields();
    return codec.decodeResponse(r, version) as ResponseOf<K>;
  }

  /** Writes one request frame; resolves with the response frame (correlation id first) or null. */
  sendFrame(
    apiKey: number,
    version: number,
    encodeBody: (w: Writer) => void,
    options: SendOptions = {},
  ): Promise<Buffer | null> {
    if (this.closedError) return Promise.reject(this.closedError);
    const socket = this.socket;
    if (!socket)
      return Promise.reject(new ConnectionClosedError(`connection to ${this.address} is not open`));
    const codec = codecOf(apiKey);
    if (!codec) return Promise.reject(new UnsupportedVersionError(`unknown api key ${apiKey}`));
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = this.nextCorrelationId >= 0x7fffffff ? 1 : this.nextCorrelationId + 1;
    const w = new Writer(256);
    const done = w.lengthPrefix32();
    encodeRequestHeader(
      w,
      { requestApiKey: apiKey, requestApiVersion: version, correlationId, clientId: this.clientId },
      isFlexible(codec, version) ? 2 : 1,
    );
    encodeBody(w);
    done();
    const bytes = w.view();
    if (options.expectResponse === false) {
      return new Promise((resolve, reject) => {
        socket.write(bytes, (err) =>
          err
            ? reject(
                new ConnectionClosedError(`write to ${this.address} failed: ${err.message}`, { cause: err }),
              )
            : resolve(null),
        );
      });
    }
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(
          new RequestTimeoutError(
            `${codec.name} request to ${this.address} got no response within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.pending.set(correlationId, { apiKey, version, resolve, reject, timer });
      socket.write(bytes);
    });
  }

  /** ApiVersions: try our highest version; on UNSUPPORTED_VERSION use the broker's highest (KIP-511). */
  private async negotiateVersions(): Promise<void> {
    const codec = apiCodecs[ApiKey.ApiVersions];
    let version = codec.maxVersion;
    for (let attempt = 0; attempt < 3; attempt++) {
      const frame = await this.sendFrame(
        ApiKey.ApiVersions,
        version,
        (w) =>
          codec.encodeRequest(
            w,
            { clientSoftwareName: 'sluice-client', clientSoftwareVersion: '0.1.0' },
            version,
          ),
        { timeoutMs: this.connectTimeoutMs },
      );
      if (frame === null) throw new SluiceClientError('INTERNAL', 'ApiVersions got no response');
      let res: ResponseOf<ApiKey.ApiVersions> | null = null;
      try {
        res = codec.decodeResponse(new Reader(frame, 4), version);
      } catch {
        res = null;
      }
      if (!res || res.errorCode === ErrorCode.UNSUPPORTED_VERSION) {
        // The error answer is always v0 so that any client can read it.
        const v0 = codec.decodeResponse(new Reader(frame, 4), 0);
        const theirs = v0.apiKeys.find((k) => k.apiKey === ApiKey.ApiVersions);
        const next = theirs ? Math.min(theirs.maxVersion, codec.maxVersion) : 0;
        if (next >= version)
          throw new UnsupportedVersionError(`the broker at ${this.address} rejected ApiVersions v${version}`);
        version = next;
        continue;
      }
      if (res.errorCode !== 0) {
        throw new SluiceClientError(
          'API_VERSIONS_FAILED',
          `ApiVersions to ${this.address} failed with error ${res.errorCode}`,
        );
      }
      for (const k of res.apiKeys) {
        this.brokerApis.set(k.apiKey, { minVersion: k.minVersion, maxVersion: k.maxVersion });
        const ours = codecOf(k.apiKey);
        if (!ours) continue;
        const v = Math.min(k.maxVersion, ours.maxVersion);
        if (v >= Math.max(k.minVersion, ours.minVersion)) this.versions.set(k.apiKey, v);
      }
      return;
    }
    throw new UnsupportedVersionError(`could not agree on an ApiVersions version with ${this.address}`);
  }
}
