import { type Config, requireSetting } from '@cms/config';
import { createMetricsApp, installHealthRoutes, installProblemHandlers, pingCheck, quietRequestLogging } from '@cms/http';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '@cms/observability';
import {
  addCdrBatches,
  CDR_BATCHES_QUEUE,
  type CdrBatchesQueue,
  classifyRedisError,
  createCdrBatchesQueue,
  createRedisConnection,
  GroupCommitter,
  type ReceivedCdrBatch,
  type Redis,
  redisReady,
  watchRedisErrors,
} from '@cms/queue';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { BacklogGauge } from './backlog.ts';
import { cdrRoutes } from './cdr-route.ts';
import { createIngestMetrics } from './metrics.ts';
import { createNodeResolver } from './node-resolver.ts';

export interface IngestDeps {
  config: Config;
  log?: Logger;
  registry?: Registry;
  /** Longest a request may take from its first byte to its last, body included; default 30 s (tests shorten it). */
  requestTimeoutMs?: number;
}

/**
 * Longest a Redis command of ingest may take. A POST must be answered (503 at worst) within about a second even when
 * Redis hangs without closing the connection; a group's write normally takes milliseconds.
 */
const REDIS_COMMAND_TIMEOUT_MS = 800;
/** How long a POST waits for a connection attempt under way (start-up) before it is answered 503. */
const REDIS_CONNECT_WAIT_MS = 500;

export interface IngestService {
  app: FastifyInstance;
  /** /metrics, /healthz and /readyz for Prometheus, on ingest.metricsPort (the main port is published for CMS). */
  metricsApp: FastifyInstance;
  queue: CdrBatchesQueue;
  /** Stops accepting, lets in-flight requests finish, then closes Redis. */
  close(): Promise<void>;
}

/** Builds the CDR receiver. Tests start it in-process; main.ts wires it to a port and signals. */
export async function buildIngest(deps: IngestDeps): Promise<IngestService> {
  const { config } = deps;
  const token = requireSetting(
    config.ingest.token,
    'ingest.token',
    'set INGEST_TOKEN (or INGEST_TOKEN_FILE) to the secret in the CMS CDR receiver URI',
  );
  const log = deps.log ?? createLogger('cdr-ingest', config.log.level);
  const registry = deps.registry ?? createMetricsRegistry('cdr-ingest');

  const redis: Redis = watchRedisErrors(
    log,
    createRedisConnection(config.redis, 'producer', { commandTimeout: REDIS_COMMAND_TIMEOUT_MS }),
    'redis connection',
  );
  const queue = watchRedisErrors(
    log,
    createCdrBatchesQueue({ connection: redis, prefix: config.queue.prefix }),
    `queue ${CDR_BATCHES_QUEUE}`,
  );
  // POSTs arriving while a Redis write is in flight are stored together as one job by the next write: far
  // fewer jobs for Redis and the workers under load, no added wait when idle.
  const store = new GroupCommitter<ReceivedCdrBatch, unknown>({
    commit: async (batches) => {
      // BullMQ would wait for a connection that is not ready (for ever, if Redis is down at start-up): refuse now
      // when Redis is known to be away, or soon if a first connection attempt does not succeed.
      await redisReady(redis, REDIS_CONNECT_WAIT_MS);
      try {
        return await addCdrBatches(queue, batches);
      } catch (err) {
        throw classifyRedisError(redis, err);
      }
    },
    size: (job) => Math.max(1, job.batch.records.length),
    maxGroupSize: 2000,
    maxGroupItems: 256,
    gatherTurn: true,
  });
  const metrics = createIngestMetrics(registry, {
    nodes: config.cms.nodes.map((node) => node.name),
    queue,
    redis,
    maxBacklog: config.ingest.maxBacklog,
  });
  const backlog = new BacklogGauge(queue);
  backlog.start();

  const requestTimeoutMs = deps.requestTimeoutMs ?? 30_000;
  const app = Fastify({
    // pino's Logger is Fastify's logger; the cast keeps FastifyInstance's default generic so plugins type-check.
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: config.ingest.bodyLimitBytes,
    // CMS keeps connections open between batches; keep them longer than its idle interval.
    keepAliveTimeout: 65_000,
    requestTimeout: requestTimeoutMs,
    // Node enforces requestTimeout (and headersTimeout, 60 s by default) only when it sweeps its connections, every
    // 30 s by default: a stalled body was cut after up to a minute more than configured. Sweep often enough that
    // the timeout applies within a few percent, and keep headersTimeout within it (Node requires that).
    http: {
      headersTimeout: Math.min(requestTimeoutMs, 60_000),
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(requestTimeoutMs / 10))),
    },
    return503OnClosing: true,
    logController: quietRequestLogging(),
  });
  installProblemHandlers(app);
  const checks = [pingCheck('redis', redis)];
  installHealthRoutes(app, { registry, checks, metrics: config.ingest.publicMetrics });
  const metricsApp = createMetricsApp({ log: log as FastifyBaseLogger, registry, checks });
  await app.register(cdrRoutes, {
    token,
    bodyLimitBytes: config.ingest.bodyLimitBytes,
    maxBacklog: config.ingest.maxBacklog,
    store,
    backlog,
    metrics,
    resolveNode: createNodeResolver(config.cms.nodes),
  });

  return {
    app,
    metricsApp,
    queue,
    async close() {
      backlog.stop();
      await Promise.all([app.close(), metricsApp.close()]);
      await queue.close();
      redis.disconnect();
    },
  };
}
