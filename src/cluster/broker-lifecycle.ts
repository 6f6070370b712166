/**
 * BrokerLifecycle: this broker's registration with the controller and its heartbeats (KRaft's
 * BrokerLifecycleManager).
 *
 * - Registers (BrokerRegistration) with a fresh incarnation id per process; the controller
 *   answers with the broker epoch (the offset of the registration record).
 * - Heartbeats every broker.heartbeat.interval.ms with the metadata offset applied here; the
 *   controller unfences the broker once that offset reaches its registration, and fences it when
 *   heartbeats stop for broker.session.timeout.ms (its leaderships then move to other replicas).
 * - A stale epoch or an unknown broker (e.g. a controller that lost the registration in a
 *   snapshot race) makes it register again.
 * - Controlled shutdown: `shutdown()` heartbeats with wantShutDown until the controller has moved
 *   every leadership away (or a deadline passes), so clients fail over before the process exits.
 */

import { randomBytes } from 'node:crypto';
import type { Logger } from '../broker/network.js';
import { ErrorCode } from '../protocol/errors.js';
import type { ControllerChannel } from './controller-channel.js';
import type { MetadataQuorum } from './metadata-quorum.js';

export interface BrokerLifecycleOptions {
  readonly nodeId: number;
  readonly clusterId: string;
  readonly advertised: () => { host: string; port: number };
  readonly rack: string | null;
  readonly heartbeatIntervalMs: number;
  readonly channel: ControllerChannel;
  readonly quorum: MetadataQuorum;
  readonly logger: Logger;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class BrokerLifecycle {
  /** -1 until registered. */
  brokerEpoch = -1;
  fenced = true;
  private readonly incarnationId = randomBytes(16).toString('hex');
  private stopped = false;
  private wantShutDown = false;
  private loopPromise: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readyResolve!: () => void;
  /** Resolves when the controller has unfenced this broker for the first time. */
  readonly unfenced = new Promise<void>((resolve) => {
    this.readyResolve = resolve;
  });

  constructor(private readonly o: BrokerLifecycleOptions) {}

  start(): void {
    this.loopPromise ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loopPromise;
  }

  /** Controlled shutdown: resolves when the controller says this broker leads nothing (or after deadlineMs). */
  async shutdown(deadlineMs: number): Promise<boolean> {
    if (this.brokerEpoch < 0) return true;
    this.wantShutDown = true;
    const until = Date.now() + deadlineMs;
    while (Date.now() < until && !this.stopped) {
      try {
        const r = await this.o.channel.brokerHeartbeat(this.heartbeatRequest());
        if (r.errorCode === ErrorCode.NONE && r.shouldShutDown) return true;
      } catch {
        // controller unreachable: keep trying until the deadline
      }
      await sleep(200);
    }
    return false;
  }

  private heartbeatRequest() {
    return {
      brokerId: this.o.nodeId,
      brokerEpoch: this.brokerEpoch,
      currentMetadataOffset: this.o.quorum.image.offset,
      wantFence: false,
      wantShutDown: this.wantShutDown,
      offlineLogDirs: [],
    };
  }

  private async loop(): Promise<void> {
    let lastError = '';
    while (!this.stopped) {
      try {
        if (this.brokerEpoch < 0) await this.register();
        else if (!this.wantShutDown) await this.heartbeat();
        lastError = '';
      } catch (err) {
        const m = (err as Error).message;
        if (m !== lastError) this.o.logger.warn(`broker lifecycle: ${m}`);
        lastError = m;
      }
      // Heartbeat faster until unfenced, so a starting cluster becomes usable quickly.
      const wait = this.fenced ? Math.min(250, this.o.heartbeatIntervalMs) : this.o.heartbeatIntervalMs;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private async register(): Promise<void> {
    const a = this.o.advertised();
    const r = await this.o.channel.brokerRegistration({
      brokerId: this.o.nodeId,
      clusterId: this.o.clusterId,
      incarnationId: this.incarnationId,
      listeners: [{ name: 'PLAINTEXT', host: a.host, port: a.port, securityProtocol: 0 }],
      features: [],
      rack: this.o.rack,
      isMigratingZkBroker: false,
      logDirs: [],
      previousBrokerEpoch: -1,
    });
    if (r.errorCode !== ErrorCode.NONE) throw new Error(`registration refused: error ${r.errorCode}`);
    this.brokerEpoch = r.brokerEpoch;
    this.o.logger.info(`registered with the controller (broker epoch ${r.brokerEpoch})`);
  }

  private async heartbeat(): Promise<void> {
    const r = await this.o.channel.brokerHeartbeat(this.heartbeatRequest());
    if (r.errorCode === ErrorCode.STALE_BROKER_EPOCH || r.errorCode === ErrorCode.BROKER_ID_NOT_REGISTERED) {
      this.o.logger.warn(
        `controller does not know broker epoch ${this.brokerEpoch} (error ${r.errorCode}); registering again`,
      );
      this.brokerEpoch = -1;
      this.fenced = true;
      return;
    }
    if (r.errorCode !== ErrorCode.NONE) throw new Error(`heartbeat answered error ${r.errorCode}`);
    if (this.fenced && !r.isFenced) {
      this.o.logger.info('unfenced by the controller: serving as a broker');
      this.readyResolve();
    }
    this.fenced = r.isFenced;
  }
}
