/**
 * Incremental fetch sessions (KIP-227).
 *
 * A client that opens a session (sessionId 0, epoch 0) gets an id; later requests name it with
 * the next epoch and list only the partitions that changed, and the response lists only the
 * partitions with news (records, a new high watermark or log start offset, or an error).
 * Requests with epoch -1 are sessionless full fetches. The cache is bounded
 * (max.incremental.fetch.session.cache.slots, 1000 by default); the least recently used session
 * is evicted when full, and its client gets FETCH_SESSION_ID_NOT_FOUND and starts over.
 */

import { ErrorCode } from '../protocol/errors.js';

export interface SessionPartition {
  topic: string;
  topicId: string;
  partition: number;
  fetchOffset: number;
  maxBytes: number;
  /** What the client was last told, to decide whether the partition has news. */
  lastHighWatermark: number;
  lastLogStartOffset: number;
}

export interface FetchSession {
  id: number;
  /** The epoch the next request must carry (0 until the request that created it is answered). */
  epoch: number;
  partitions: Map<string, SessionPartition>;
  lastUsedMs: number;
}

export const FETCH_SESSION_SLOTS_MAX = 1000;

export function sessionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export class FetchSessionCache {
  private readonly sessions = new Map<number, FetchSession>();
  private nextId = 1;

  constructor(private readonly slotsMax = FETCH_SESSION_SLOTS_MAX) {}

  get size(): number {
    return this.sessions.size;
  }

  create(nowMs: number): FetchSession {
    if (this.sessions.size >= this.slotsMax) {
      let oldest: FetchSession | undefined;
      for (const s of this.sessions.values()) if (!oldest || s.lastUsedMs < oldest.lastUsedMs) oldest = s;
      if (oldest) this.sessions.delete(oldest.id);
    }
    let id = this.nextId++;
    if (this.nextId > 0x7fffffff) this.nextId = 1;
    while (this.sessions.has(id)) id = this.nextId++;
    const s: FetchSession = { id, epoch: 0, partitions: new Map(), lastUsedMs: nowMs };
    this.sessions.set(id, s);
    return s;
  }

  /** Finds a session for an incremental request; returns it or the error to answer. */
  lookup(id: number, epoch: number, nowMs: number): FetchSession | ErrorCode {
    const s = this.sessions.get(id);
    if (!s) return ErrorCode.FETCH_SESSION_ID_NOT_FOUND;
    if (s.epoch !== epoch) return ErrorCode.INVALID_FETCH_SESSION_EPOCH;
    s.lastUsedMs = nowMs;
    return s;
  }

  remove(id: number): void {
    this.sessions.delete(id);
  }
}
