import type { Config } from '@cms/config';
import { createDatabase, type Database } from '@cms/db';
import { installHealthRoutes, installProblemHandlers, quietRequestLogging, type ReadinessCheck } from '@cms/http';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '@cms/observability';
import { createRedisConnection } from '@cms/queue';
import { sql } from 'drizzle-orm';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { createActuatorMetrics } from './metrics.ts';
import { NodeWriter } from './node-writer.ts';
import { type ActuatorTuning, resolveTuning } from './tuning.ts';

export interface ActuatorDeps {
  config: Config;
  db?: Database;
  log?: Logger;
  registry?: Registry;
  /** Delays and limits that are not operator configuration (tests shorten them). */
  tuning?: Partial<ActuatorTuning>;
}

export interface ActuatorService {
  app: FastifyInstance;
  /** One writer per configured CMS node, by node name. */
  writers: ReadonlyMap<string, NodeWriter>;
  /** Stops taking jobs; jobs in hand finish or return to their queue. */
  close(): Promise<void>;
}

/**
 * The process that makes CMS match the desired state: one BullMQ worker per configured node, paced under the
 * node's write ceiling, with coalescing, retries, 503 back-off and credential holds (see node-writer.ts).
 */
export async function buildActuator(deps: ActuatorDeps): Promise<ActuatorService> {
  const { config } = deps;
  const log = deps.log ?? createLogger('cms-actuator', config.log.level);
  const registry = deps.registry ?? createMetricsRegistry('cms-actuator');
  const tuning = resolveTuning(deps.tuning);
  const metrics = createActuatorMetrics(registry);
  const ownsDb = !deps.db;
  const db = deps.db ?? createDatabase(config.database.url, { max: 4, applicationName: 'cms-actuator' });
  const redis = createRedisConnection(config.redis.url, 'worker');
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));

  const writers = new Map<string, NodeWriter>();
  for (const node of config.cms.nodes) {
    writers.set(node.name, new NodeWriter({ node, db, redis, prefix: config.queue.prefix, log, metrics, tuning }));
  }

  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: quietRequestLogging() });
  installProblemHandlers(app);
  const checks: ReadinessCheck[] = [
    {
      name: 'redis',
      check: async () => {
        await redis.ping();
      },
    },
    {
      name: 'postgres',
      check: async () => {
        await db.execute(sql`SELECT 1`);
      },
    },
    ...[...writers.values()].map((writer) => ({
      name: `cms:${writer.name}`,
      check: async () => {
        if (!writer.health.healthy) throw new Error(writer.health.reason ?? 'writes are held');
      },
    })),
  ];
  installHealthRoutes(app, { registry, checks });

  for (const writer of writers.values()) writer.start();
  if (writers.size === 0) log.warn('no CMS nodes configured (cms.nodes): nothing will be written to CMS');

  return {
    app,
    writers,
    async close() {
      await app.close();
      await Promise.all([...writers.values()].map((writer) => writer.close()));
      redis.disconnect();
      if (ownsDb) await db.$client.end();
    },
  };
}
