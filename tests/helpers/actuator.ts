import { afterEach } from 'node:test';
import { type BridgeInfo, type Simulator, startSimulator } from '@cms/cms-sim';
import { type Config, loadConfig } from '@cms/config';
import type { Database } from '@cms/db';
import { createLogger, createMetricsRegistry, type Registry } from '@cms/observability';
import { type CmsWritesQueue, createRedisConnection, type Redis } from '@cms/queue';
import { type ActuatorDeps, type ActuatorService, buildActuator } from '../../services/cms-actuator/src/app.ts';
import type { ActuatorTuning } from '../../services/cms-actuator/src/tuning.ts';
import { onTestFileEnd, testDatabase, testRedis } from './infra.ts';

/**
 * What the in-process actuator tests (tests/integration/cms-actuator*.test.ts, cms-reconcile, cms-events-feed) set up
 * alike: their database and Redis, short delays, and an actuator with silent logs and a metrics registry to read.
 */

/** Short delays so retries, 503 pauses and health probes take milliseconds. */
export const FAST_ACTUATOR_TUNING: Partial<ActuatorTuning> = {
  requestTimeoutMs: 2000,
  retryBaseDelayMs: 10,
  retryMaxDelayMs: 50,
  busyInitialDelayMs: 50,
  busyMaxDelayMs: 200,
  healthProbeIntervalMs: 100,
  queueDepthIntervalMs: 100,
};

export interface ActuatorTestBackends {
  db: Database;
  databaseUrl: string;
  redisUrl: string;
  /** The file's Redis prefix; each actuator takes `${basePrefix}-<n>` so no test sees another's jobs. */
  basePrefix: string;
  /** A connection for enqueuing jobs the way the policy worker does; closed when the test file ends. */
  producer: Redis;
}

/** The test file's own database and Redis prefix, and a producer connection (call it from `before`). */
export async function actuatorTestBackends(): Promise<ActuatorTestBackends> {
  const { db, url: databaseUrl } = await testDatabase();
  const { url: redisUrl, prefix: basePrefix } = await testRedis();
  const producer = createRedisConnection(redisUrl, 'producer');
  onTestFileEnd(() => producer.disconnect());
  return { db, databaseUrl, redisUrl, basePrefix, producer };
}

/** Starts an in-process actuator on `config` with silent logs and a registry of its own (returned to read metrics). */
export async function startTestActuator(
  config: Config,
  deps: Omit<ActuatorDeps, 'config' | 'registry' | 'log'> = {},
): Promise<{ service: ActuatorService; registry: Registry }> {
  const registry = createMetricsRegistry('cms-actuator');
  const service = await buildActuator({ ...deps, config, registry, log: createLogger('cms-actuator', 'silent') });
  return { service, registry };
}

/** A simulator with the one bridge `node`, stopped when the test file ends. */
export async function startOneBridgeSimulator(node: string, password: string): Promise<{ sim: Simulator; bridge: BridgeInfo }> {
  const sim = await startSimulator({ controlPort: null, bridges: [{ name: node, password }] });
  onTestFileEnd(() => sim.stop());
  return { sim, bridge: sim.bridge(node) };
}

export interface StartedActuator {
  service: ActuatorService;
  /** The producer's handle on the node's write queue, as the policy worker holds it. */
  queue: CmsWritesQueue;
}

/** Closes (and forgets) what the tests started, each actuator before its queue: call it from `afterEach`. */
export async function closeActuators(running: StartedActuator[]): Promise<void> {
  for (const { service, queue } of running.splice(0)) {
    await service.close();
    await queue.close();
  }
}

/** The config of an actuator writing to the one simulated `bridge` as node `node` (20 writes a second), silent logs. */
export function oneNodeActuatorConfig(options: {
  redisUrl: string;
  prefix: string;
  node: string;
  bridge: BridgeInfo;
  /** Where the actuator reaches the node instead of the bridge (a proxy, a TLS front). */
  url?: string;
  caFile?: string;
  /** More config keys (actuator, policy...). */
  overrides?: Record<string, unknown>;
}): Config {
  const { bridge } = options;
  return loadConfig({
    env: {},
    overrides: {
      log: { level: 'silent' },
      redis: { url: options.redisUrl },
      queue: { prefix: options.prefix },
      cms: {
        nodes: [
          {
            name: options.node,
            url: options.url ?? bridge.url,
            username: bridge.username,
            password: bridge.password,
            maxWritesPerSecond: 20,
            ...(options.caFile ? { caFile: options.caFile } : {}),
          },
        ],
      },
      ...options.overrides,
    },
  });
}

/** What each test of the file stops after it, last started first: `push` a stop as soon as something is started. */
export function cleanupsAfterEachTest(): { push(cleanup: () => Promise<void> | void): void } {
  let cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
  });
  return { push: (cleanup) => void cleanups.push(cleanup) };
}
