import { Histogram, type Registry } from '@cms/observability';
import type { FastifyInstance } from 'fastify';

const NAME = 'http_request_duration_seconds';

/** Request duration by method, route pattern (not the raw URL, so ids do not explode the label set) and status. */
export function installRequestMetrics(app: FastifyInstance, registry: Registry): void {
  // A registry shared by several in-process instances (tests) already holds the histogram.
  const histogram =
    (registry.getSingleMetric(NAME) as Histogram<'method' | 'route' | 'status_code'> | undefined) ??
    new Histogram({
      name: NAME,
      help: 'HTTP request duration',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
  app.addHook('onResponse', async (request, reply) => {
    histogram.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}
