export { createLogger, type Logger, REDACT_PATHS, scrubConnectionUrl, scrubUrl, serializers } from './logger.ts';
export { Counter, createMetricsRegistry, Gauge, Histogram, type Registry } from './metrics.ts';
