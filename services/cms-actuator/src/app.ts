import type { Config } from '@cms/config';
import { installHealthRoutes, installProblemHandlers, quietRequestLogging } from '@cms/http';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '@cms/observability';
import { createRedisConnection } from '@cms/queue';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';

export interface ActuatorDeps {
  config: Config;
  log?: Logger;
  registry?: Registry;
}

export interface ActuatorService {
  app: FastifyInstance;
  close(): Promise<void>;
}

/**
 * The process that will make every CMS API write (security messages, call control). Until the security-levels
 * work lands it only reports health, so `npm start` and compose already run the final set of services.
 */
export async function buildActuator(deps: ActuatorDeps): Promise<ActuatorService> {
  const { config } = deps;
  const log = deps.log ?? createLogger('cms-actuator', config.log.level);
  const registry = deps.registry ?? createMetricsRegistry('cms-actuator');
  const redis = createRedisConnection(config.redis.url, 'worker');
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: quietRequestLogging() });
  installProblemHandlers(app);
  installHealthRoutes(app, {
    registry,
    checks: [
      {
        name: 'redis',
        check: async () => {
          await redis.ping();
        },
      },
    ],
  });
  return {
    app,
    async close() {
      await app.close();
      redis.disconnect();
    },
  };
}
