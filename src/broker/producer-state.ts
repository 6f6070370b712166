/**
 * Idempotent-producer state of one partition (KIP-98): per producer id, its epoch and the last
 * five batches it wrote, so a retried batch is recognised and answered with its original offset.
 *
 * Rules, as Kafka's broker applies them:
 * - an older epoch than the one recorded is fenced: INVALID_PRODUCER_EPOCH;
 * - a new epoch must start at sequence 0: OUT_OF_ORDER_SEQUENCE_NUMBER otherwise (for a producer
 *   id never seen, UNKNOWN_PRODUCER_ID);
 * - a batch equal to one of the last five (same epoch, first and last sequence) is a duplicate:
 *   success, with the offsets it was first written at;
 * - an older sequence not among the last five: DUPLICATE_SEQUENCE_NUMBER;
 * - otherwise the first sequence must follow the last one written (wrapping at 2^31-1):
 *   OUT_OF_ORDER_SEQUENCE_NUMBER otherwise.
 * The state is rebuilt on start by replaying batch headers from the log (`replay`).
 */

import { ErrorCode } from '../protocol/errors.js';

export const PRODUCER_BATCHES_REMEMBERED = 5;
const INT32_MAX = 0x7fffffff;

export interface BatchMetadata {
  firstSeq: number;
  lastSeq: number;
  firstOffset: number;
  lastOffset: number;
  timestampMs: number;
}

export interface ProducerEntry {
  producerId: number;
  epoch: number;
  batches: BatchMetadata[];
  lastTimestampMs: number;
}

export type SequenceCheck =
  | { kind: 'append' }
  | { kind: 'duplicate'; batch: BatchMetadata }
  | { kind: 'error'; errorCode: ErrorCode; message: string };

function lastSeqOf(firstSeq: number, lastOffsetDelta: number): number {
  const v = firstSeq + lastOffsetDelta;
  return v > INT32_MAX ? v - INT32_MAX - 1 : v;
}

function inSequence(lastSeq: number, nextSeq: number): boolean {
  return nextSeq === lastSeq + 1 || (nextSeq === 0 && lastSeq === INT32_MAX);
}

export class ProducerStateTable {
  private readonly producers = new Map<number, ProducerEntry>();

  get size(): number {
    return this.producers.size;
  }

  entry(producerId: number): ProducerEntry | undefined {
    return this.producers.get(producerId);
  }

  entries(): IterableIterator<ProducerEntry> {
    return this.producers.values();
  }

  /** Decides what to do with an incoming batch of an idempotent producer (producerId >= 0). */
  check(producerId: number, epoch: number, firstSeq: number, lastOffsetDelta: number): SequenceCheck {
    const e = this.producers.get(producerId);
    const lastSeq = lastSeqOf(firstSeq, lastOffsetDelta);
    if (!e) {
      if (firstSeq !== 0) {
        return {
          kind: 'error',
          errorCode: ErrorCode.UNKNOWN_PRODUCER_ID,
          message: `producer ${producerId} has no state on this partition and sent sequence ${firstSeq}, expected 0`,
        };
      }
      return { kind: 'append' };
    }
    if (epoch < e.epoch) {
      return {
        kind: 'error',
        errorCode: ErrorCode.INVALID_PRODUCER_EPOCH,
        message: `producer ${producerId} epoch ${epoch} is older than the current epoch ${e.epoch}`,
      };
    }
    if (epoch > e.epoch) {
      if (firstSeq !== 0) {
        return {
          kind: 'error',
          errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
          message: `invalid sequence ${firstSeq} for new epoch ${epoch} of producer ${producerId}, expected 0`,
        };
      }
      return { kind: 'append' };
    }
    for (const b of e.batches) {
      if (b.firstSeq === firstSeq && b.lastSeq === lastSeq) return { kind: 'duplicate', batch: b };
    }
    const last = e.batches[e.batches.length - 1];
    if (!last) return { kind: 'append' };
    if (inSequence(last.lastSeq, firstSeq)) return { kind: 'append' };
    const oldest = e.batches[0]!;
    if (firstSeq < oldest.firstSeq && firstSeq <= last.lastSeq) {
      return {
        kind: 'error',
        errorCode: ErrorCode.DUPLICATE_SEQUENCE_NUMBER,
        message: `sequence ${firstSeq} of producer ${producerId} was already written and is older than the last ${PRODUCER_BATCHES_REMEMBERED} batches`,
      };
    }
    return {
      kind: 'error',
      errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
      message: `out of order sequence ${firstSeq} from producer ${producerId} at epoch ${epoch}, expected ${last.lastSeq + 1}`,
    };
  }

  /** Records a batch that was appended (or replayed from the log on start). */
  record(
    producerId: number,
    epoch: number,
    firstSeq: number,
    lastOffsetDelta: number,
    firstOffset: number,
    timestampMs: number,
  ): void {
    let e = this.producers.get(producerId);
    if (!e || epoch > e.epoch) {
      e = { producerId, epoch, batches: [], lastTimestampMs: timestampMs };
      this.producers.set(producerId, e);
    }
    e.batches.push({
      firstSeq,
      lastSeq: lastSeqOf(firstSeq, lastOffsetDelta),
      firstOffset,
      lastOffset: firstOffset + lastOffsetDelta,
      timestampMs,
    });
    if (e.batches.length > PRODUCER_BATCHES_REMEMBERED) e.batches.shift();
    e.lastTimestampMs = timestampMs;
  }

  /** Drops state of producers idle for longer than `expirationMs` (transactional.id.expiration.ms). */
  expire(nowMs: number, expirationMs: number): void {
    for (const [id, e] of this.producers)
      if (nowMs - e.lastTimestampMs > expirationMs) this.producers.delete(id);
  }

  /**
   * Forgets every remembered batch at or after `offset` (the log was truncated there). Synchronous,
   * so no append recorded meanwhile can be lost, as an asynchronous rebuild from the log could.
   */
  truncateFrom(offset: number): void {
    for (const [id, e] of this.producers) {
      e.batches = e.batches.filter((b) => b.firstOffset < offset);
      if (e.batches.length === 0) this.producers.delete(id);
    }
  }

  clear(): void {
    this.producers.clear();
  }
}
