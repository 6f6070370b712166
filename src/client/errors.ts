/**
 * Typed client errors. Every error the client throws carries a stable `code` (for programs), a
 * `canRetry` flag (whether the same call may succeed later: the producer and consumer retry
 * these on their own until their deadline), and the underlying `cause`. Messages are written for
 * people: they say what happened and, where there is one, what to do about it.
 */

import { ErrorCode, errorName } from '../protocol/errors.js';

export interface ClientErrorOptions {
  cause?: unknown;
  canRetry?: boolean;
}

export class SluiceClientError extends Error {
  readonly code: string;
  readonly canRetry: boolean;
  constructor(code: string, message: string, options: ClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SluiceClientError';
    this.code = code;
    this.canRetry = options.canRetry ?? false;
  }
}

/** Nothing accepts connections at the address (refused, unreachable, unknown host). */
export class BrokerNotAvailableError extends SluiceClientError {
  readonly host: string;
  readonly port: number;
  constructor(host: string, port: number, options: ClientErrorOptions = {}) {
    super('BROKER_NOT_AVAILABLE', `no broker at ${host}:${port} — start one with \`sluice start\``, {
      canRetry: true,
      ...options,
    });
    this.name = 'BrokerNotAvailableError';
    this.host = host;
    this.port = port;
  }
}

/** The connection closed (or failed) while a request was outstanding. */
export class ConnectionClosedError extends SluiceClientError {
  constructor(message: string, options: ClientErrorOptions = {}) {
    super('CONNECTION_CLOSED', message, { canRetry: true, ...options });
    this.name = 'ConnectionClosedError';
  }
}

/** No response arrived within the request timeout. */
export class RequestTimeoutError extends SluiceClientError {
  constructor(message: string, options: ClientErrorOptions = {}) {
    super('REQUEST_TIMEOUT', message, { canRetry: true, ...options });
    this.name = 'RequestTimeoutError';
  }
}

/** The broker does not serve any version of an API that this client can speak. */
export class UnsupportedVersionError extends SluiceClientError {
  constructor(message: string, options: ClientErrorOptions = {}) {
    super('UNSUPPORTED_VERSION', message, { canRetry: false, ...options });
    this.name = 'UnsupportedVersionError';
  }
}

/** Bad arguments given to a client call (never retried). */
export class InvalidArgumentError extends SluiceClientError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message, { canRetry: false });
    this.name = 'InvalidArgumentError';
  }
}

/** Kafka error codes that mean "try again, possibly after refreshing metadata". */
const RETRIABLE = new Set<number>([
  ErrorCode.CORRUPT_MESSAGE,
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.REQUEST_TIMED_OUT,
  ErrorCode.REPLICA_NOT_AVAILABLE,
  ErrorCode.NETWORK_EXCEPTION,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.NOT_ENOUGH_REPLICAS,
  ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
  ErrorCode.NOT_CONTROLLER,
  ErrorCode.KAFKA_STORAGE_ERROR,
  ErrorCode.FETCH_SESSION_ID_NOT_FOUND,
  ErrorCode.INVALID_FETCH_SESSION_EPOCH,
  ErrorCode.FENCED_LEADER_EPOCH,
  ErrorCode.UNKNOWN_LEADER_EPOCH,
  ErrorCode.OFFSET_NOT_AVAILABLE,
  ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
  ErrorCode.THROTTLING_QUOTA_EXCEEDED,
  ErrorCode.UNKNOWN_TOPIC_ID,
]);

/** Error codes after which the partition -> leader map may be stale. */
const METADATA_STALE = new Set<number>([
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.FENCED_LEADER_EPOCH,
  ErrorCode.UNKNOWN_LEADER_EPOCH,
  ErrorCode.UNKNOWN_TOPIC_ID,
  ErrorCode.NOT_CONTROLLER,
]);

export function isRetriableCode(code: number): boolean {
  return RETRIABLE.has(code);
}

export function needsMetadataRefresh(code: number): boolean {
  return METADATA_STALE.has(code);
}

/**
 * A Kafka error code returned by the broker. `code` is Kafka's name for it (e.g.
 * "TOPIC_ALREADY_EXISTS"), `errorCode` the number on the wire.
 */
export class KafkaResponseError extends SluiceClientError {
  readonly errorCode: number;
  constructor(errorCode: number, message: string, options: ClientErrorOptions = {}) {
    super(errorName(errorCode), message, { canRetry: isRetriableCode(errorCode), ...options });
    this.name = 'KafkaResponseError';
    this.errorCode = errorCode;
  }
}

/**
 * Builds the KafkaResponseError for a code, with a message that names the subject and, for the
 * common mistakes, says what to do.
 */
export function kafkaError(
  errorCode: number,
  subject: string,
  brokerMessage?: string | null,
): KafkaResponseError {
  const detail = brokerMessage ? ` (${brokerMessage})` : '';
  let msg: string;
  switch (errorCode) {
    case ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
      msg = `${subject} does not exist — create it with \`sluice topic create\``;
      break;
    case ErrorCode.TOPIC_ALREADY_EXISTS:
      msg = `${subject} already exists`;
      break;
    case ErrorCode.INVALID_PARTITIONS:
      msg = `invalid partition count for ${subject}${detail}`;
      break;
    case ErrorCode.INVALID_REPLICATION_FACTOR:
      msg = `invalid replication factor for ${subject}${detail}`;
      break;
    case ErrorCode.INVALID_CONFIG:
      msg = `invalid config for ${subject}${detail}`;
      break;
    case ErrorCode.NON_EMPTY_GROUP:
      msg = `${subject} still has active members — stop the group's consumers first${detail}`;
      break;
    case ErrorCode.GROUP_ID_NOT_FOUND:
      msg = `${subject} does not exist${detail}`;
      break;
    case ErrorCode.INVALID_TOPIC_EXCEPTION:
      msg = `invalid topic name in ${subject}${detail}`;
      break;
    default:
      msg = `${subject}: ${errorName(errorCode)}${detail}`;
  }
  return new KafkaResponseError(errorCode, msg);
}
