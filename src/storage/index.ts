/**
 * Public API of the storage layer: partition logs, their config, the filesystem and clock seams,
 * and the typed errors callers map to Kafka error codes.
 */

export {
  PartitionLog,
  DEFAULT_LOG_CONFIG,
  type LogConfig,
  type PartitionLogDeps,
  type StorageLogger,
  type AppendOptions,
  type AppendResult,
  type ReadOptions,
  type ReadResult,
  type BatchHeaderEntry,
  type RecoveryResult,
} from './partition-log.js';
export { type Clock, systemClock, ManualClock } from './clock.js';
export { type CleanOptions, type CleanResult, CLEANER_CHECKPOINT } from './cleaner.js';
export { type LogFile, type LogFileSystem, type FileStat, NodeFileSystem } from './fs.js';
export { MemoryFileSystem } from './memory-fs.js';
export {
  StorageError,
  type StorageErrorCode,
  OffsetOutOfRangeError,
  InvalidRecordBatchError,
  RecordBatchTooLargeError,
  CorruptSegmentError,
  LogClosedError,
  InvalidConfigError,
  StorageIoError,
  ioCodeOf,
} from './errors.js';
export { LOG_START_OFFSET_CHECKPOINT } from './checkpoint.js';
export { segmentFileName } from './segment.js';
export { ReadBufferPool, fetchReadBuffers } from './read-buffer-pool.js';
export { TailCacheBudget, defaultTailCacheBudget } from './tail-cache.js';
