/**
 * ControllerChannel: how this broker reaches the active controller.
 *
 * When this node is the active controller the call runs in-process (ControllerService); otherwise
 * it goes over one Kafka-protocol connection to the controller's client listener (the address
 * comes from its broker registration in the metadata image). An answer of NOT_CONTROLLER, a
 * closed connection or an unknown controller is retried against the current controller until
 * `timeoutMs` passes, then the last error is thrown (callers map it to their own answer).
 */

import { Connection } from '../client/connection.js';
import type { Encodable } from '../protocol/codec-support.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { ApiKey, type ApiTypes } from '../protocol/generated/index.js';
import type { ControllerService } from './controller-service.js';
import type { MetadataQuorum } from './metadata-quorum.js';

type Req<K extends keyof ApiTypes> = Encodable<ApiTypes[K][0]>;
type Resp<K extends keyof ApiTypes> = ApiTypes[K][1];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ControllerChannel {
  private conn: Connection | undefined;
  private connTarget = -1;
  private closed = false;

  constructor(
    private readonly nodeId: number,
    private readonly quorum: MetadataQuorum,
    private readonly service: ControllerService,
    /** node.local.address: the local IP of connections to the controller. */
    private readonly localAddress?: string,
  ) {}

  close(): void {
    this.closed = true;
    this.conn?.close();
    this.conn = undefined;
  }

  /** The active controller's id, if known. */
  get controllerId(): number | undefined {
    return this.quorum.leaderId;
  }

  private async connection(): Promise<Connection> {
    const leader = this.quorum.leaderId;
    if (leader === undefined) throw new KafkaError(ErrorCode.NOT_CONTROLLER, 'no controller elected yet');
    if (this.conn?.isOpen && this.connTarget === leader) return this.conn;
    this.conn?.close();
    this.conn = undefined;
    const b = this.quorum.image.broker(leader);
    if (!b)
      throw new KafkaError(
        ErrorCode.NOT_CONTROLLER,
        `controller ${leader} has not registered its listener yet`,
      );
    this.conn = await Connection.connect({
      host: b.host,
      port: b.port,
      clientId: `sluice-broker-${this.nodeId}`,
      requestTimeoutMs: 15_000,
      connectTimeoutMs: 3_000,
      localAddress: this.localAddress,
    });
    this.connTarget = leader;
    return this.conn;
  }

  /**
   * Calls the controller: in-process when this node is it, else over the wire. `errorOf` reads
   * the response's top-level error so NOT_CONTROLLER answers are retried.
   */
  async call<K extends keyof ApiTypes>(
    apiKey: K,
    request: Req<K>,
    local: () => Promise<Encodable<Resp<K>>>,
    errorOf: (r: Resp<K>) => number,
    timeoutMs = 10_000,
    requestTimeoutMs = 5_000,
  ): Promise<Resp<K>> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        // Each attempt is bounded well below the overall deadline: a controller that is paused
        // (SIGSTOP, GC, partition) must not hold a heartbeat long enough to get this broker fenced.
        const perRequestMs = Math.max(500, Math.min(requestTimeoutMs, deadline - Date.now()));
        const r = (
          this.service.isActive
            ? await local()
            : await (await this.connection()).send(apiKey, request, { timeoutMs: perRequestMs })
        ) as Resp<K>;
        if (errorOf(r) !== ErrorCode.NOT_CONTROLLER) return r;
        last = new KafkaError(ErrorCode.NOT_CONTROLLER);
      } catch (err) {
        last = err;
        this.conn?.close();
        this.conn = undefined;
      }
      if (Date.now() >= deadline) break;
      await sleep(Math.min(50 * 2 ** attempt, 500));
    }
    if (last instanceof KafkaError) throw last;
    throw new KafkaError(
      ErrorCode.NOT_CONTROLLER,
      `controller unreachable: ${last instanceof Error ? last.message : 'stopped'}`,
    );
  }

  brokerRegistration(req: Req<ApiKey.BrokerRegistration>) {
    return this.call(
      ApiKey.BrokerRegistration,
      req,
      () => this.service.brokerRegistration(req as never),
      (r) => r.errorCode,
    );
  }
  brokerHeartbeat(req: Req<ApiKey.BrokerHeartbeat>) {
    // Heartbeats are retried within one interval; each attempt gets at most 1 s.
    return this.call(
      ApiKey.BrokerHeartbeat,
      req,
      () => this.service.brokerHeartbeat(req as never),
      (r) => r.errorCode,
      3_000,
      1_000,
    );
  }
  alterPartition(req: Req<ApiKey.AlterPartition>) {
    return this.call(
      ApiKey.AlterPartition,
      req,
      () => this.service.alterPartition(req as never),
      (r) => r.errorCode,
      5_000,
      2_000,
    );
  }
  allocateProducerIds(req: Req<ApiKey.AllocateProducerIds>) {
    return this.call(
      ApiKey.AllocateProducerIds,
      req,
      () => this.service.allocateProducerIds(req as never),
      (r) => r.errorCode,
    );
  }

  /** Forwards a client's admin request (CreateTopics, ...) to the active controller. */
  forward<K extends keyof ApiTypes>(
    apiKey: K,
    request: Req<K>,
    errorOf: (r: Resp<K>) => number,
  ): Promise<Resp<K>> {
    return this.call(
      apiKey,
      request,
      () => {
        throw new KafkaError(ErrorCode.NOT_CONTROLLER, 'forward() is only for non-controllers');
      },
      errorOf,
    );
  }
}
