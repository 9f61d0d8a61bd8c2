import type { Config } from '@cms/config';
import { type Database, databaseCheck } from '@cms/db';
import { installHealthRoutes, installProblemHandlers } from '@cms/http';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '@cms/observability';
import { compilePolicy } from '@cms/policy';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifySchemaValidationError } from 'fastify';
import { apiTokens, installAuth } from './auth.ts';
import { databaseUnavailable } from './db-unavailable.ts';
import { registerDocs } from './docs.ts';
import { installRequestMetrics } from './metrics.ts';
import { callsRoutes } from './routes/calls.ts';
import { meetingsRoutes } from './routes/meetings.ts';
import { recordsRoutes } from './routes/records.ts';
import { recordsCompatRoutes } from './routes/records-compat.ts';
import { sharedSchemas } from './schemas.ts';

export interface RecordsApiDeps {
  config: Config;
  db: Database;
  log?: Logger;
  registry?: Registry;
}

/**
 * AJV's messages name the parameter ("querystring/limit must be <= 500") except for unknown ones, which
 * it reports without the name; say which parameter is not known.
 */
function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const messages = errors.map((error) => {
    if (error.keyword === 'additionalProperties' && typeof error.params.additionalProperty === 'string') {
      return `${dataVar}${error.instancePath}/${error.params.additionalProperty} is not a known parameter`;
    }
    return `${dataVar}${error.instancePath} ${error.message}`;
  });
  return new Error(messages.join(', '));
}

/** Builds the records API; tests start it in-process, main.ts binds it to a port. Closing it does not end the pool. */
export async function buildRecordsApi(deps: RecordsApiDeps): Promise<FastifyInstance> {
  const { config, db } = deps;
  // Before anything else: a service that would answer every request 401 must not start.
  const tokens = apiTokens(config.api);
  // Legs are classified on every detail request; the lists are parsed once (a bad entry stops start-up, naming it).
  const policy = compilePolicy(config.policy);
  const log = deps.log ?? createLogger('records-api', config.log.level);
  const registry = deps.registry ?? createMetricsRegistry('records-api');

  const app = Fastify({
    // pino's Logger is Fastify's logger; the cast keeps FastifyInstance's default generic so plugins type-check.
    // Request logging stays on (Fastify's default): one line in, one out, tagged with the token name by the auth hook.
    loggerInstance: log as FastifyBaseLogger,
    return503OnClosing: true,
    // Query strings arrive as text, so coerce; never drop unknown parameters silently (they answer 400 instead).
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false, useDefaults: true } },
    schemaErrorFormatter: formatSchemaErrors,
  });
  // Postgres down, restarting or out of connections answers 503 + Retry-After, not 500: nothing is wrong with the request.
  installProblemHandlers(app, { translate: databaseUnavailable });
  installRequestMetrics(app, registry);
  for (const schema of sharedSchemas) app.addSchema(schema);
  await registerDocs(app);
  installHealthRoutes(app, {
    registry,
    checks: [databaseCheck(db)],
  });

  await app.register(
    async (api) => {
      installAuth(api, tokens);
      await api.register(recordsRoutes, { db });
      await api.register(recordsCompatRoutes, { db });
      await api.register(callsRoutes, { db, policy });
      await api.register(meetingsRoutes, { db, policy });
    },
    { prefix: '/api/v1' },
  );
  return app;
}
