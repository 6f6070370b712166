/**
 * Topic administration in a cluster: every change goes through the active controller.
 *
 * On the controller it runs in-process (ControllerService); on any other broker the request is
 * forwarded over the Kafka protocol (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs)
 * to the controller, whose handler lands back here in-process. After a change the call waits
 * (briefly) until this broker's own metadata image shows it, so a client that creates a topic and
 * then asks this broker for metadata sees it.
 */

import { validateTopicConfig } from '../broker/config.js';
import type { TopicAdmin, TopicMeta } from '../broker/topics.js';
import { validateTopicName } from '../metadata/names.js';
import { ZERO_UUID } from '../protocol/codec-support.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/index.js';
import type { ControllerChannel } from './controller-channel.js';
import type { ControllerService } from './controller-service.js';
import type { MetadataQuorum } from './metadata-quorum.js';
import { topicMeta } from './replica-manager.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ClusterTopicAdmin implements TopicAdmin {
  constructor(
    private readonly quorum: MetadataQuorum,
    private readonly service: ControllerService,
    private readonly channel: ControllerChannel,
    private readonly defaults: {
      numPartitions: number;
      defaultReplicationFactor: number;
      autoCreateTopicsEnable: boolean;
    },
  ) {}

  /** Local checks only; the controller validates again (and knows the live brokers for sure). */
  validateCreate(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: [string, string][],
  ): KafkaError | null {
    const nameErr = validateTopicName(name);
    if (nameErr) return new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, nameErr);
    if (this.quorum.image.topic(name))
      return new KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${name}' already exists.`);
    if (partitions !== -1 && partitions < 1)
      return new KafkaError(ErrorCode.INVALID_PARTITIONS, 'Number of partitions must be larger than 0.');
    const live = this.quorum.image.liveBrokers().length;
    if (replicationFactor !== -1 && (replicationFactor < 1 || replicationFactor > live)) {
      return new KafkaError(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `Unable to replicate the partition ${replicationFactor} time(s): The target replication factor of ${replicationFactor} cannot be reached because only ${live} broker(s) are registered.`,
      );
    }
    for (const [k, v] of configs) {
      const err = validateTopicConfig(k, v);
      if (err) return new KafkaError(ErrorCode.INVALID_CONFIG, err);
    }
    return null;
  }

  async create(
    name: string,
    partitions: number,
    configs: [string, string][] = [],
    replicationFactor = -1,
    assignments: { partitionIndex: number; brokerIds: number[] }[] = [],
  ): Promise<{ meta: TopicMeta; replicationFactor: number }> {
    if (this.service.isActive) {
      const r = await this.service.createTopic(
        {
          name,
          numPartitions: assignments.length > 0 ? -1 : partitions,
          replicationFactor: assignments.length > 0 ? -1 : replicationFactor,
          assignments,
          configs,
        },
        false,
      );
      if (!r.topic)
        throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, `topic ${name} missing after creation`);
      return { meta: topicMeta(r.topic) as TopicMeta, replicationFactor: r.replicationFactor };
    }
    const resp = await this.channel.forward(
      ApiKey.CreateTopics,
      {
        topics: [
          {
            name,
            numPartitions: assignments.length > 0 ? -1 : partitions,
            replicationFactor: assignments.length > 0 ? -1 : replicationFactor,
            assignments: assignments.map((a) => ({
              partitionIndex: a.partitionIndex,
              brokerIds: a.brokerIds,
            })),
            configs: configs.map(([k, v]) => ({ name: k, value: v })),
          },
        ],
        timeoutMs: 30_000,
        validateOnly: false,
      },
      (r) => r.topics[0]?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR,
    );
    const t = resp.topics[0];
    if (!t)
      throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'empty CreateTopics answer from the controller');
    if (t.errorCode !== ErrorCode.NONE) throw new KafkaError(t.errorCode, t.errorMessage ?? undefined);
    const local = await this.waitFor(() => this.quorum.image.topic(name));
    const meta: TopicMeta = local
      ? (topicMeta(local) as TopicMeta)
      : { name, topicId: t.topicId !== ZERO_UUID ? t.topicId : '', partitions: t.numPartitions, configs: {} };
    return { meta, replicationFactor: t.replicationFactor };
  }

  async autoCreate(name: string): Promise<{ meta: TopicMeta } | null> {
    const existing = this.quorum.image.topic(name);
    if (existing) return { meta: topicMeta(existing) as TopicMeta };
    if (!this.defaults.autoCreateTopicsEnable || validateTopicName(name) !== null || name.startsWith('__'))
      return null;
    try {
      return await this.create(
        name,
        this.defaults.numPartitions,
        [],
        this.replicationFactorFor(this.defaults.defaultReplicationFactor),
      );
    } catch (err) {
      if (err instanceof KafkaError && err.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS) {
        const t = await this.waitFor(() => this.quorum.image.topic(name));
        return t ? { meta: topicMeta(t) as TopicMeta } : null;
      }
      throw err;
    }
  }

  /** Kafka fails auto-creation when fewer brokers are live than the factor; cap it instead, so a dev cluster with a node down still works. */
  private replicationFactorFor(rf: number): number {
    const live = this.quorum.image.liveBrokers().length;
    return Math.max(1, Math.min(rf, live));
  }

  async ensureTopic(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: [string, string][],
  ): Promise<void> {
    if (this.quorum.image.topic(name)) return;
    const rf = this.replicationFactorFor(replicationFactor);
    if (this.service.isActive) {
      await this.service.ensureTopic(name, partitions, rf, configs);
      return;
    }
    try {
      await this.create(name, partitions, configs, rf);
    } catch (err) {
      if (!(err instanceof KafkaError && err.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS)) throw err;
      await this.waitFor(() => this.quorum.image.topic(name));
    }
  }

  async delete(name: string): Promise<void> {
    if (this.service.isActive) {
      await this.service.deleteTopic(name);
      return;
    }
    const resp = await this.channel.forward(
      ApiKey.DeleteTopics,
      { topics: [{ name, topicId: ZERO_UUID }], topicNames: [name], timeoutMs: 30_000 },
      (r) => r.responses[0]?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR,
    );
    const code = resp.responses[0]?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
    if (code !== ErrorCode.NONE) throw new KafkaError(code, resp.responses[0]?.errorMessage ?? undefined);
    await this.waitFor(() => (this.quorum.image.topic(name) ? undefined : true));
  }

  async addPartitions(name: string, total: number, assignments?: number[][]): Promise<void> {
    if (this.service.isActive) {
      await this.service.createPartitions(name, total, assignments, false);
      return;
    }
    const resp = await this.channel.forward(
      ApiKey.CreatePartitions,
      {
        topics: [
          {
            name,
            count: total,
            assignments: assignments ? assignments.map((brokerIds) => ({ brokerIds })) : null,
          },
        ],
        timeoutMs: 30_000,
        validateOnly: false,
      },
      (r) => r.results[0]?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR,
    );
    const res = resp.results[0];
    if (!res || res.errorCode !== ErrorCode.NONE) {
      throw new KafkaError(res?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR, res?.errorMessage ?? undefined);
    }
    await this.waitFor(() =>
      (this.quorum.image.topic(name)?.partitions.length ?? 0) >= total ? true : undefined,
    );
  }

  async setConfigs(name: string, configs: Partial<Record<string, string>>): Promise<void> {
    const full: Record<string, string> = {};
    for (const [k, v] of Object.entries(configs)) if (v !== undefined) full[k] = v;
    if (this.service.isActive) {
      await this.service.setTopicConfigs(name, full, false);
      return;
    }
    const resp = await this.channel.forward(
      ApiKey.AlterConfigs,
      {
        resources: [
          {
            resourceType: 2,
            resourceName: name,
            configs: Object.entries(full).map(([k, v]) => ({ name: k, value: v })),
          },
        ],
        validateOnly: false,
      },
      (r) => r.responses[0]?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR,
    );
    const r = resp.responses[0];
    if (!r || r.errorCode !== ErrorCode.NONE)
      throw new KafkaError(r?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR, r?.errorMessage ?? undefined);
    await this.waitFor(() =>
      JSON.stringify(this.quorum.image.topic(name)?.configs ?? {}) === JSON.stringify(full)
        ? true
        : undefined,
    );
  }

  /** Polls this broker's image until `probe` returns something (at most 5 s). */
  private async waitFor<T>(probe: () => T | undefined): Promise<T | undefined> {
    const until = Date.now() + 5_000;
    for (;;) {
      const v = probe();
      if (v !== undefined || Date.now() > until) return v;
      await sleep(20);
    }
  }
}
