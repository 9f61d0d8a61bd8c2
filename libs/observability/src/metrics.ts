import { collectDefaultMetrics, Registry } from 'prom-client';

/** One registry per service instance (not the global one), so in-process tests can build several services. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export { Counter, Gauge, Histogram, type Registry } from 'prom-client';
