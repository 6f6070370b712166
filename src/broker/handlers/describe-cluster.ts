/** DescribeCluster (key 60), v0-1 (KIP-700): the cluster id, controller and brokers. */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';
import { clusterBrokers } from './metadata.js';

export const describeClusterHandler = defineHandler<Broker, ApiKey.DescribeCluster>(
  ApiKey.DescribeCluster,
  { min: 0, max: 1 },
  async (ctx) => {
    const b = ctx.broker;
    const adv = b.advertised;
    if (b.cluster) {
      const image = b.cluster.quorum.image;
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        errorMessage: null,
        endpointType: 1,
        clusterId: b.clusterId,
        controllerId: b.cluster.quorum.leaderId ?? -1,
        brokers: clusterBrokers(image).map((x) => ({
          brokerId: x.nodeId,
          host: x.host,
          port: x.port,
          rack: x.rack,
        })),
        clusterAuthorizedOperations: -2147483648,
      };
    }
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      errorMessage: null,
      endpointType: 1,
      clusterId: b.clusterId,
      controllerId: b.nodeId,
      brokers: [{ brokerId: b.nodeId, host: adv.host, port: adv.port, rack: null }],
      clusterAuthorizedOperations: -2147483648,
    };
  },
);
