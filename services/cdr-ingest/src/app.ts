import { type Config, requireSetting } from '@cms/config';
import { installHealthRoutes, installProblemHandlers, pingCheck, quietRequestLogging } from '@cms/http';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '@cms/observability';
import {
  CDR_BATCH_JOB_OPTIONS,
  CDR_BATCHES_QUEUE,
  type CdrBatchesJob,
  type CdrBatchJob,
  createRedisConnection,
  GroupCommitter,
  type Redis,
} from '@cms/queue';
import { Queue } from 'bullmq';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { BacklogGauge } from './backlog.ts';
import { cdrRoutes } from './cdr-route.ts';
import { createIngestMetrics } from './metrics.ts';
import { createNodeResolver } from './node-resolver.ts';

export interface IngestDeps {
  config: Config;
  log?: Logger;
  registry?: Registry;
}

export interface IngestService {
  app: FastifyInstance;
  queue: Queue<CdrBatchesJob>;
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
  const metrics = createIngestMetrics(registry);

  const redis: Redis = createRedisConnection(config.redis.url, 'producer');
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
  const queue = new Queue<CdrBatchesJob>(CDR_BATCHES_QUEUE, { connection: redis, prefix: config.queue.prefix });
  // POSTs arriving while a Redis write is in flight are stored together as one job by the next write: far
  // fewer jobs for Redis and the workers under load, no added wait when idle.
  const store = new GroupCommitter<CdrBatchJob, unknown>({
    commit: (batches) => queue.add('cdr-batches', { batches }, CDR_BATCH_JOB_OPTIONS),
    size: (job) => Math.max(1, job.batch.records.length),
    maxGroupSize: 2000,
    maxGroupItems: 256,
    gatherTurn: true,
  });
  queue.on('error', (err) => log.debug({ err: err.message }, 'queue error'));
  const backlog = new BacklogGauge(queue);
  backlog.start();

  const app = Fastify({
    // pino's Logger is Fastify's logger; the cast keeps FastifyInstance's default generic so plugins type-check.
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: config.ingest.bodyLimitBytes,
    // CMS keeps connections open between batches; keep them longer than its idle interval.
    keepAliveTimeout: 65_000,
    requestTimeout: 30_000,
    return503OnClosing: true,
    logController: quietRequestLogging(),
  });
  installProblemHandlers(app);
  installHealthRoutes(app, {
    registry,
    checks: [pingCheck('redis', redis)],
  });
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
    queue,
    async close() {
      backlog.stop();
      await app.close();
      await queue.close();
      redis.disconnect();
    },
  };
}
