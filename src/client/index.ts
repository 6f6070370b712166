/**
 * The Sluice client: connections, cluster metadata, admin, producer and consumer. This file only
 * re-exports; each module documents what it owns.
 */

export { Admin, ConfigSource, EARLIEST_OFFSET, LATEST_OFFSET } from './admin.js';
export type {
  ClusterDescription,
  ConfigEntry,
  CreatedTopic,
  CreateTopicOptions,
  GroupDescription,
  GroupListing,
  GroupMemberDescription,
  GroupOffset,
  GroupPartitionLag,
  OffsetAndTimestamp,
  OffsetResetPlanEntry,
  OffsetResetSpec,
  PartitionDescription,
  QuorumDescription,
  QuorumReplica,
  TopicDescription,
  TopicListing,
} from './admin.js';
export { Cluster, parseBootstrap, parseHostPort } from './cluster.js';
export type { BrokerAddress, ClusterOptions, PartitionMetadata, TopicMetadata } from './cluster.js';
export { Connection } from './connection.js';
export type { ConnectionOptions, SendOptions } from './connection.js';
export { Consumer } from './consumer.js';
export type { ConsumerOptions, ConsumerRecord, OffsetReset, TopicPartitionOffset } from './consumer.js';
export { GroupConsumer } from './group-consumer.js';
export type { GroupConsumerOptions } from './group-consumer.js';
export {
  ASSIGNORS,
  CONSUMER_PROTOCOL_TYPE,
  assign,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  findCoordinator,
} from './group-protocol.js';
export type {
  AssignorMember,
  AssignorName,
  MemberAssignment,
  Subscription,
  TopicPartitions,
} from './group-protocol.js';
export {
  BrokerNotAvailableError,
  ConnectionClosedError,
  InvalidArgumentError,
  KafkaResponseError,
  RequestTimeoutError,
  SluiceClientError,
  UnsupportedVersionError,
  isRetriableCode,
} from './errors.js';
export { murmur2, partitionForKey, toPositive } from './partitioner.js';
export { Producer, parseCompression } from './producer.js';
export type { Acks, CompressionName, ProducerOptions, ProducerRecord, RecordMetadata } from './producer.js';
