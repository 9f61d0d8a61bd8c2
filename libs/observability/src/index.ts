export {
  createLogger,
  isSecretName,
  type Logger,
  REDACT_PATHS,
  scrubConnectionUrl,
  scrubLogLine,
  scrubText,
  scrubUrl,
  serializers,
} from './logger.ts';
export { Counter, createMetricsRegistry, Gauge, Histogram, type Registry } from './metrics.ts';
