import type { Config } from '@cms/config';
import { type Database, databaseCheck } from '@cms/db';
import { createMetricsApp, HttpProblem, installHealthRoutes, installProblemHandlers, sendProblem } from '@cms/http';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '@cms/observability';
import { compilePolicy } from '@cms/policy';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifySchemaValidationError } from 'fastify';
import { apiTokens, installAuth } from './auth.ts';
import { createConsole } from './console/index.ts';
import { databaseUnavailable } from './db-unavailable.ts';
import { registerDocs } from './docs.ts';
import { installLevelMetrics, installRequestMetrics } from './metrics.ts';
import { installParameterChecks, MAX_PARAM_LENGTH, pathProblem } from './parameters.ts';
import { operatorActionRoutes } from './routes/actions.ts';
import { callsRoutes } from './routes/calls.ts';
import { meetingsRoutes } from './routes/meetings.ts';
import { recordsRoutes } from './routes/records.ts';
import { recordsCompatRoutes } from './routes/records-compat.ts';
import { CURSOR_PATTERN, GUID_PATTERN, sharedSchemas } from './schemas.ts';

export interface RecordsApiDeps {
  config: Config;
  db: Database;
  /**
   * Where the read routes (records, calls, meetings) read (database.readUrl: a streaming replica); default `db`.
   * Operator actions and their audit stay on `db`: an action is read back right after it is stored.
   */
  readDb?: Database;
  log?: Logger;
  registry?: Registry;
}

/** What a pattern means, said instead of the regular expression. */
const PATTERN_RULES: Record<string, string> = {
  [GUID_PATTERN]: 'must be a GUID like 46d49cb4-8171-4abc-97f5-b88035b1da0a (CMS identifies calls and call legs by GUID)',
  [CURSOR_PATTERN]: 'is not a cursor this endpoint issued; send the nextCursor of a previous answer unchanged',
};

/**
 * AJV's messages name the parameter ("querystring/limit must be <= 500") except for unknown ones, which
 * it reports without the name; say which parameter is not known.
 */
function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const messages = errors.map((error) => {
    if (error.keyword === 'additionalProperties' && typeof error.params.additionalProperty === 'string') {
      return `${dataVar}${error.instancePath}/${error.params.additionalProperty} is not a known parameter`;
    }
    // AJV says "must be equal to one of the allowed values" without saying which they are.
    if (error.keyword === 'enum' && Array.isArray(error.params.allowedValues)) {
      return `${dataVar}${error.instancePath} must be one of: ${error.params.allowedValues.join(', ')}`;
    }
    const rule = error.keyword === 'pattern' ? PATTERN_RULES[String(error.params.pattern)] : undefined;
    if (rule) return `${dataVar}${error.instancePath} ${rule}`;
    return `${dataVar}${error.instancePath} ${error.message}`;
  });
  return new Error(messages.join(', '));
}

/** What every service's builder returns: the Fastify app to listen with, and how to stop what the builder started. */
export interface RecordsApiService {
  app: FastifyInstance;
  /** /metrics, /healthz and /readyz for Prometheus, on api.metricsPort (the main port is published to users). */
  metricsApp: FastifyInstance;
  /** Stops taking requests and finishes the ones in flight. The pool was handed in, so its owner ends it. */
  close(): Promise<void>;
}

/** Builds the records API; tests start it in-process, main.ts binds it to a port. */
export async function buildRecordsApi(deps: RecordsApiDeps): Promise<RecordsApiService> {
  const { config, db } = deps;
  const readDb = deps.readDb ?? db;
  // Before anything else: a service that would answer every request 401 must not start.
  const tokens = apiTokens(config.api);
  // Legs are classified on every detail request; the lists are parsed once (a bad entry stops start-up, naming it).
  const policy = compilePolicy(config.policy);
  const log = deps.log ?? createLogger('records-api', config.log.level);
  const registry = deps.registry ?? createMetricsRegistry('records-api');

  // Route patterns, so a path the router cannot decode can still be answered naming its parameter.
  const routePatterns: string[] = [];
  const app = Fastify({
    // pino's Logger is Fastify's logger; the cast keeps FastifyInstance's default generic so plugins type-check.
    // Request logging stays on (Fastify's default): one line in, one out, tagged with the token name by the auth hook.
    loggerInstance: log as FastifyBaseLogger,
    return503OnClosing: true,
    // Query strings arrive as text, so coerce; never drop unknown parameters silently (they answer 400 instead).
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false, useDefaults: true } },
    schemaErrorFormatter: formatSchemaErrors,
    // Path parameters are limited by each route's schema (which names them in its 400), not by the router's 100.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Paths the router refuses (%FF, overlong parameters) answer problem+json naming the parameter, like the rest.
    frameworkErrors: (error, request, reply) => {
      if (error.code === 'FST_ERR_BAD_URL') return sendProblem(reply, pathProblem(routePatterns, request.url, 'encoding'));
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendProblem(reply, pathProblem(routePatterns, request.url, 'length'));
      return sendProblem(reply, new HttpProblem(400, 'Bad Request', `Invalid request: ${error.message}`));
    },
  });
  app.addHook('onRoute', (route) => {
    routePatterns.push(route.url);
  });
  // Postgres down, restarting or out of connections answers 503 + Retry-After, not 500: nothing is wrong with the request.
  installProblemHandlers(app, { translate: databaseUnavailable });
  installRequestMetrics(app, registry);
  installLevelMetrics(registry, db, log);
  for (const schema of sharedSchemas) app.addSchema(schema);
  await registerDocs(app);
  // A replica that stops answering fails readiness too (named apart): the read routes would answer 503.
  const checks = readDb === db ? [databaseCheck(db)] : [databaseCheck(db), { ...databaseCheck(readDb), name: 'postgres-read' }];
  // The operator console at / (its session cookie is also a way into /api/v1, with CSRF checks for changes).
  const operatorConsole = createConsole({ config, db, tokens });
  installHealthRoutes(app, { registry, checks, metrics: config.api.publicMetrics });
  const metricsApp = createMetricsApp({ log: log as FastifyBaseLogger, registry, checks });

  await app.register(
    async (api) => {
      installAuth(api, tokens, operatorConsole.sessionAuth);
      installParameterChecks(api);
      await api.register(recordsRoutes, { db: readDb });
      await api.register(recordsCompatRoutes, { db: readDb });
      await api.register(callsRoutes, { db: readDb, policy });
      await api.register(meetingsRoutes, { db: readDb, policy });
      await api.register(operatorActionRoutes, { config, db, log });
    },
    { prefix: '/api/v1' },
  );
  await operatorConsole.register(app, {
    selfReady: () =>
      checks[0]!.check().then(
        () => true,
        () => false,
      ),
  });
  return {
    app,
    metricsApp,
    close: async () => {
      await Promise.all([app.close(), metricsApp.close()]);
      await operatorConsole.close();
    },
  };
}
