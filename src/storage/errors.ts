/**
 * Typed errors raised by the storage layer.
 *
 * Every error carries a stable `code` (callers map codes to Kafka error codes, never messages) and
 * an optional `cause` (the underlying fs or decode error). Messages are for humans only.
 */

export type StorageErrorCode =
  | 'OFFSET_OUT_OF_RANGE'
  | 'INVALID_RECORD_BATCH'
  | 'RECORD_BATCH_TOO_LARGE'
  | 'CORRUPT_SEGMENT'
  | 'LOG_CLOSED'
  | 'INVALID_CONFIG'
  | 'STORAGE_IO';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'StorageError';
  }
}

/** A read asked for an offset below logStartOffset or above logEndOffset. */
export class OffsetOutOfRangeError extends StorageError {
  readonly offset: number;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  constructor(offset: number, logStartOffset: number, logEndOffset: number) {
    super('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside [${logStartOffset}, ${logEndOffset}]`);
    this.name = 'OffsetOutOfRangeError';
    this.offset = offset;
    this.logStartOffset = logStartOffset;
    this.logEndOffset = logEndOffset;
  }
}

/** The bytes handed to append() are not a sequence of whole, well-formed v2 batches. */
export class InvalidRecordBatchError extends StorageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_RECORD_BATCH', message, options);
    this.name = 'InvalidRecordBatchError';
  }
}

/** A single batch is larger than a segment may hold (Kafka's RecordBatchTooLargeException). */
export class RecordBatchTooLargeError extends StorageError {
  constructor(message: string) {
    super('RECORD_BATCH_TOO_LARGE', message);
    this.name = 'RecordBatchTooLargeError';
  }
}

/** A sealed segment holds bytes that do not parse as batches where they must. */
export class CorruptSegmentError extends StorageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CORRUPT_SEGMENT', message, options);
    this.name = 'CorruptSegmentError';
  }
}

export class LogClosedError extends StorageError {
  constructor(dir: string) {
    super('LOG_CLOSED', `partition log ${dir} is closed`);
    this.name = 'LogClosedError';
  }
}

export class InvalidConfigError extends StorageError {
  constructor(message: string) {
    super('INVALID_CONFIG', message);
    this.name = 'InvalidConfigError';
  }
}

/**
 * Wraps a filesystem failure so callers see one typed error with the fs error as cause.
 * `ioCode` is the cause's errno code when it has one ('ENOSPC', 'EIO', 'EDQUOT', ...), and the
 * message ends with the cause's message, so a log line says what went wrong.
 */
export class StorageIoError extends StorageError {
  readonly ioCode: string | undefined;
  constructor(message: string, options?: { cause?: unknown }) {
    const cause = options?.cause;
    const ioCode = ioCodeOf(cause);
    const detail = cause instanceof Error ? cause.message : cause !== undefined ? String(cause) : undefined;
    super('STORAGE_IO', detail !== undefined ? `${message}: ${detail}` : message, options);
    this.name = 'StorageIoError';
    this.ioCode = ioCode ?? (cause instanceof StorageIoError ? cause.ioCode : undefined);
  }
}

/** The errno code ('ENOSPC', 'EIO', ...) of a filesystem error, if it has one. */
export function ioCodeOf(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** True for the "no such file" error both filesystem implementations raise. */
export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}
