/** The registry of API handlers this broker serves; ApiVersions advertises exactly these. */

import type { Broker } from '../broker.js';
import type { ApiHandler } from '../dispatcher.js';
import { alterConfigsHandler, incrementalAlterConfigsHandler } from './alter-configs.js';
import { apiVersionsHandler } from './api-versions.js';
import { consumerGroupDescribeHandler } from './consumer-group-describe.js';
import { consumerGroupHeartbeatHandler } from './consumer-group-heartbeat.js';
import {
  allocateProducerIdsHandler,
  alterPartitionHandler,
  brokerHeartbeatHandler,
  brokerRegistrationHandler,
} from './controller-apis.js';
import { createPartitionsHandler } from './create-partitions.js';
import { createTopicsHandler } from './create-topics.js';
import { deleteGroupsHandler } from './delete-groups.js';
import { deleteRecordsHandler } from './delete-records.js';
import { deleteTopicsHandler } from './delete-topics.js';
import { describeClusterHandler } from './describe-cluster.js';
import { describeConfigsHandler } from './describe-configs.js';
import { describeGroupsHandler } from './describe-groups.js';
import { describeQuorumHandler } from './describe-quorum.js';
import { fetchHandler } from './fetch.js';
import { findCoordinatorHandler } from './find-coordinator.js';
import { heartbeatHandler } from './heartbeat.js';
import { initProducerIdHandler } from './init-producer-id.js';
import { joinGroupHandler } from './join-group.js';
import { leaveGroupHandler } from './leave-group.js';
import { listGroupsHandler } from './list-groups.js';
import { listOffsetsHandler } from './list-offsets.js';
import { metadataHandler } from './metadata.js';
import { offsetCommitHandler } from './offset-commit.js';
import { offsetDeleteHandler } from './offset-delete.js';
import { offsetFetchHandler } from './offset-fetch.js';
import { offsetForLeaderEpochHandler } from './offset-for-leader-epoch.js';
import { produceHandler } from './produce.js';
import { syncGroupHandler } from './sync-group.js';

export const allHandlers: ApiHandler<Broker>[] = [
  produceHandler,
  fetchHandler,
  listOffsetsHandler,
  metadataHandler,
  offsetCommitHandler,
  offsetFetchHandler,
  findCoordinatorHandler,
  joinGroupHandler,
  heartbeatHandler,
  leaveGroupHandler,
  syncGroupHandler,
  describeGroupsHandler,
  listGroupsHandler,
  apiVersionsHandler,
  createTopicsHandler,
  deleteTopicsHandler,
  deleteRecordsHandler,
  initProducerIdHandler,
  deleteGroupsHandler,
  describeConfigsHandler,
  alterConfigsHandler,
  createPartitionsHandler,
  incrementalAlterConfigsHandler,
  offsetDeleteHandler,
  describeClusterHandler,
  describeQuorumHandler,
  consumerGroupHeartbeatHandler,
  consumerGroupDescribeHandler,
  offsetForLeaderEpochHandler,
  alterPartitionHandler,
  brokerRegistrationHandler,
  brokerHeartbeatHandler,
  allocateProducerIdsHandler,
];
