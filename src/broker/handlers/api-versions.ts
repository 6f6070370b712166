/**
 * ApiVersions (key 18), v0-4. KIP-511: v3+ carries the client's software name and version.
 * Lists every API this broker serves with its version range. Produce is advertised from v0
 * (as Kafka 4 does, so librdkafka keeps working) though v0-2 are answered UNSUPPORTED_VERSION.
 * Unsupported ApiVersions versions are answered in v0 by the dispatcher.
 */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const apiVersionsHandler = defineHandler<Broker, ApiKey.ApiVersions>(
  ApiKey.ApiVersions,
  { min: 0, max: 4 },
  async (ctx) => ({
    errorCode: 0,
    apiKeys: ctx.broker.dispatcher.supportedApis(),
    throttleTimeMs: 0,
  }),
);
