import { Counter, Gauge, Histogram, type Registry } from '@cms/observability';

export function createActuatorMetrics(registry: Registry) {
  return {
    writes: new Counter({
      name: 'cms_writes_total',
      help: 'CMS write jobs by node and outcome (applied, unchanged, callEnded, retrying, busy, held, deadLettered)',
      labelNames: ['node', 'outcome'],
      registers: [registry],
    }),
    writeSeconds: new Histogram({
      name: 'cms_write_duration_seconds',
      help: 'CMS API time of one write job (GET + PUT), by node',
      labelNames: ['node'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'cms_write_queue_depth',
      help: 'CMS write jobs waiting (incl. delayed retries) per node',
      labelNames: ['node'],
      registers: [registry],
    }),
    nodeHealthy: new Gauge({
      name: 'cms_node_healthy',
      help: '1 while the node accepts our credentials and certificate, 0 while its writes are held',
      labelNames: ['node'],
      registers: [registry],
    }),
  };
}

export type ActuatorMetrics = ReturnType<typeof createActuatorMetrics>;
