import { Gauge, type Registry } from '@cms/observability';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { quietRequestLogging } from './logging.ts';

/** A named dependency check for /readyz; resolves when reachable, throws (with a reason) when not. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

const CHECK_TIMEOUT_MS = 2000;

/** A readiness check that pings a client (ioredis, or anything with `ping()`). */
export function pingCheck(name: string, target: { ping(): Promise<unknown> }): ReadinessCheck {
  return {
    name,
    check: async () => {
      await target.ping();
    },
  };
}

async function runCheck(check: ReadinessCheck): Promise<{ name: string; ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check.check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { name: check.name, ok: true };
  } catch (err) {
    return { name: check.name, ok: false, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

export interface HealthRoutesOptions {
  registry: Registry;
  checks: ReadinessCheck[];
  /**
   * Whether this app serves GET /metrics (default true). A service whose main port is published to CMS or to users
   * (cdr-ingest, records-api) serves it on a separate metrics listener instead, so its main port answers 404.
   */
  metrics?: boolean;
  /** More of the service's state for the /readyz body (e.g. the actuator's mode per CMS node); not checks. */
  details?: () => Record<string, unknown>;
}

/** GET /healthz (process alive), GET /readyz (dependencies reachable), GET /metrics (Prometheus). */
export function installHealthRoutes(app: FastifyInstance, options: HealthRoutesOptions): void {
  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }));
  app.get('/readyz', { logLevel: 'warn' }, async (_req, reply) => {
    const results = await Promise.all(options.checks.map(runCheck));
    const ready = results.every((r) => r.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: results, ...options.details?.() });
  });
  if (options.metrics === false) return;
  // Readiness as metrics, evaluated at each scrape (the same checks as /readyz): Prometheus alerts on a service that
  // answers but cannot work, which `up` alone does not show. A registry shared by in-process instances (tests)
  // already holds the gauges.
  const ready =
    (options.registry.getSingleMetric('service_ready') as Gauge | undefined) ??
    new Gauge({
      name: 'service_ready',
      help: '1 when every readiness check passes (as GET /readyz answers 200), else 0',
      registers: [options.registry],
    });
  const checkOk =
    (options.registry.getSingleMetric('readiness_check_ok') as Gauge<'check'> | undefined) ??
    new Gauge({
      name: 'readiness_check_ok',
      help: '1 when the named readiness check (redis, postgres, cms:<node>, ...) passed at the last scrape, else 0',
      labelNames: ['check'],
      registers: [options.registry],
    });
  app.get('/metrics', { logLevel: 'warn' }, async (_req, reply) => {
    const results = await Promise.all(options.checks.map(runCheck));
    for (const result of results) checkOk.set({ check: result.name }, result.ok ? 1 : 0);
    ready.set(results.every((r) => r.ok) ? 1 : 0);
    return reply.type(options.registry.contentType).send(await options.registry.metrics());
  });
}

/**
 * A second listener for a service whose main port is reachable from outside (cdr-ingest for CMS, records-api for
 * users): /metrics, /healthz and /readyz only, on a port that stays on the internal network, so publishing the main
 * port does not publish the metrics (node names, queue depths, request counts).
 */
export function createMetricsApp(options: { log: FastifyBaseLogger; registry: Registry; checks: ReadinessCheck[] }): FastifyInstance {
  const app = Fastify({ loggerInstance: options.log, return503OnClosing: true, logController: quietRequestLogging() });
  installHealthRoutes(app, { registry: options.registry, checks: options.checks });
  return app;
}
