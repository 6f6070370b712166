/**
 * Request dispatch: decodes a frame's header and body with the generated codec, calls the API's
 * handler, and encodes the response with the right header version.
 *
 * Kafka's header rules (protocol.html, KIP-482, KIP-511):
 * - request header v2 (tagged fields) for flexible request versions, v1 otherwise;
 * - response header v1 for flexible versions, v0 otherwise — except ApiVersions, whose response
 *   header is always v0 so a client can parse it before it knows what the broker speaks;
 * - an ApiVersions request of a version the broker does not know is answered in v0 with
 *   UNSUPPORTED_VERSION and the list of supported APIs.
 * Any other request for an unknown API or version closes the connection (the caller logs it).
 */

import type { Encodable } from '../protocol/codec-support.js';
import { ErrorCode } from '../protocol/errors.js';
import { type ApiCodec, ApiKey, apiCodecs } from '../protocol/generated/index.js';
import { type RequestHeader, decodeRequestHeader } from '../protocol/generated/request-header.js';
import { DecodeError, Reader, Writer } from '../protocol/primitives.js';
import type { ConnectionInfo, FrameHandler } from './network.js';

/** Byte arrays at least this large are sent from where they are instead of copied into the response. */
export const ZERO_COPY_MIN_BYTES = 16 * 1024;

export interface RequestContext<B = unknown> {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  conn: ConnectionInfo;
  broker: B;
}

/** Returned by a handler when the request must not be answered (Produce with acks=0). */
export const NO_RESPONSE = Symbol('no response');

export interface ApiHandler<B = unknown> {
  apiKey: ApiKey;
  /** Versions this broker serves (advertised in ApiVersions). */
  minVersion: number;
  maxVersion: number;
  handle(ctx: RequestContext<B>, request: unknown): Promise<unknown | typeof NO_RESPONSE>;
}

/** Typed helper to define a handler: request and response types follow from the api key. */
export function defineHandler<B, K extends keyof typeof apiCodecs>(
  apiKey: K,
  versions: { min: number; max: number },
  handle: (
    ctx: RequestContext<B>,
    request: ReturnType<(typeof apiCodecs)[K]['decodeRequest']>,
  ) => Promise<Encodable<ReturnType<(typeof apiCodecs)[K]['decodeResponse']>> | typeof NO_RESPONSE>,
): ApiHandler<B> {
  return {
    apiKey: apiKey as ApiKey,
    minVersion: versions.min,
    maxVersion: versions.max,
    handle: handle as ApiHandler<B>['handle'],
  };
}

export interface DispatchObserver {
  onRequest?(
    apiKey: number,
    apiVersion: number,
    errorCode: number | null,
    durationMs: number,
    bytesIn: number,
    bytesOut: number,
  ): void;
}

function codecOf(apiKey: number): ApiCodec<unknown, unknown> | undefined {
  return (apiCodecs as Record<number, ApiCodec<unknown, unknown>>)[apiKey];
}

function requestHeaderVersion(codec: ApiCodec<unknown, unknown>, version: number): number {
  return codec.flexibleMin >= 0 && version >= codec.flexibleMin ? 2 : 1;
}

function responseHeaderVersion(codec: ApiCodec<unknown, unknown>, version: number): number {
  if (codec.apiKey === ApiKey.ApiVersions) return 0;
  return codec.flexibleMin >= 0 && version >= codec.flexibleMin ? 1 : 0;
}

/** Finds the top-level errorCode of a response object, if it has one (for metrics). */
function topErrorCode(res: unknown): number | null {
  if (res && typeof res === 'object' && 'errorCode' in res) {
    const v = (res as { errorCode?: unknown }).errorCode;
    return typeof v === 'number' ? v : null;
  }
  return null;
}

export class Dispatcher<B> implements FrameHandler {
  private readonly handlers = new Map<number, ApiHandler<B>>();

  constructor(
    private readonly broker: B,
    handlers: ApiHandler<B>[],
    private readonly observer: DispatchObserver = {},
  ) {
    for (const h of handlers) this.handlers.set(h.apiKey, h);
  }

  /** The API versions this broker advertises, sorted by api key. */
  supportedApis(): { apiKey: number; minVersion: number; maxVersion: number }[] {
    return [...this.handlers.values()]
      .map((h) => ({ apiKey: h.apiKey, minVersion: h.minVersion, maxVersion: h.maxVersion }))
      .sort((a, b) => a.apiKey - b.apiKey);
  }

  async handleFrame(frame: Buffer, conn: ConnectionInfo): Promise<Buffer[] | null> {
    const started = performance.now();
    const r = new Reader(frame);
    if (frame.length < 8) throw new DecodeError(`request of ${frame.length} bytes is shorter than a header`);
    const apiKey = frame.readInt16BE(0);
    const apiVersion = frame.readInt16BE(2);
    const correlationId = frame.readInt32BE(4);
    const codec = codecOf(apiKey);
    const handler = this.handlers.get(apiKey);
    if (!codec || !handler) throw new DecodeError(`unsupported api key ${apiKey}`);

    if (apiKey === ApiKey.ApiVersions && apiVersion > handler.maxVersion) {
      // KIP-511: answer in v0 so the client can retry with a version we know.
      const w = new Writer(1024);
      w.int32(correlationId);
      codec.encodeResponse(w, { errorCode: ErrorCode.UNSUPPORTED_VERSION, apiKeys: this.supportedApis() }, 0);
      return [w.toBuffer()];
    }
    if (apiVersion < handler.minVersion || apiVersion > handler.maxVersion) {
      throw new DecodeError(
        `unsupported version ${apiVersion} of api ${codec.name} (supported ${handler.minVersion}-${handler.maxVersion})`,
      );
    }

    const header: RequestHeader = decodeRequestHeader(r, requestHeaderVersion(codec, apiVersion));
    const request = codec.decodeRequest(r, apiVersion);
    const ctx: RequestContext<B> = {
      apiKey,
      apiVersion,
      correlationId,
      clientId: header.clientId,
      conn,
      broker: this.broker,
    };
    const response = await handler.handle(ctx, request);
    if (response === NO_RESPONSE) {
      this.observer.onRequest?.(apiKey, apiVersion, null, performance.now() - started, frame.length, 0);
      return null;
    }
    // Record batches (Fetch) are referenced, not copied: the response goes out as a gathered write.
    const w = new Writer(256, { zeroCopyMinBytes: ZERO_COPY_MIN_BYTES });
    w.int32(correlationId);
    if (responseHeaderVersion(codec, apiVersion) >= 1) w.uvarint(0);
    codec.encodeResponse(w, response as Encodable<unknown>, apiVersion);
    this.observer.onRequest?.(
      apiKey,
      apiVersion,
      topErrorCode(response),
      performance.now() - started,
      frame.length,
      w.byteLength,
    );
    return w.chunks();
  }
}
