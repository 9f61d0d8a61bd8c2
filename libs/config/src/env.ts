/**
 * Environment overrides: each variable sets one config key. Secrets can also come from `<NAME>_FILE`
 * (Docker/Kubernetes secrets), which wins over the plain variable so a file mount is never shadowed by a stale value.
 */
type EnvKind = 'string' | 'int' | 'list';

export interface EnvBinding {
  env: string;
  path: readonly string[];
  kind: EnvKind;
  secret?: boolean;
}

export const ENV_BINDINGS: readonly EnvBinding[] = [
  { env: 'LOG_LEVEL', path: ['log', 'level'], kind: 'string' },
  { env: 'REDIS_URL', path: ['redis', 'url'], kind: 'string', secret: true },
  { env: 'REDIS_SENTINELS', path: ['redis', 'sentinels'], kind: 'list' },
  { env: 'REDIS_SENTINEL_NAME', path: ['redis', 'sentinelName'], kind: 'string' },
  { env: 'REDIS_SENTINEL_PASSWORD', path: ['redis', 'sentinelPassword'], kind: 'string', secret: true },
  { env: 'DATABASE_URL', path: ['database', 'url'], kind: 'string', secret: true },
  { env: 'DATABASE_READ_URL', path: ['database', 'readUrl'], kind: 'string', secret: true },
  { env: 'QUEUE_PREFIX', path: ['queue', 'prefix'], kind: 'string' },
  { env: 'INGEST_HOST', path: ['ingest', 'host'], kind: 'string' },
  { env: 'INGEST_PORT', path: ['ingest', 'port'], kind: 'int' },
  { env: 'INGEST_METRICS_PORT', path: ['ingest', 'metricsPort'], kind: 'int' },
  { env: 'INGEST_TOKEN', path: ['ingest', 'token'], kind: 'string', secret: true },
  { env: 'INGEST_BODY_LIMIT_BYTES', path: ['ingest', 'bodyLimitBytes'], kind: 'int' },
  { env: 'INGEST_MAX_BACKLOG', path: ['ingest', 'maxBacklog'], kind: 'int' },
  { env: 'API_HOST', path: ['api', 'host'], kind: 'string' },
  { env: 'API_PORT', path: ['api', 'port'], kind: 'int' },
  { env: 'API_METRICS_PORT', path: ['api', 'metricsPort'], kind: 'int' },
  { env: 'API_TOKEN', path: ['api', 'token'], kind: 'string', secret: true },
  { env: 'POLICY_WORKER_HOST', path: ['policyWorker', 'host'], kind: 'string' },
  { env: 'POLICY_WORKER_PORT', path: ['policyWorker', 'port'], kind: 'int' },
  { env: 'POLICY_WORKER_CONCURRENCY', path: ['policyWorker', 'concurrency'], kind: 'int' },
  { env: 'POLICY_WORKER_LOCK_MS', path: ['policyWorker', 'lockDurationMs'], kind: 'int' },
  { env: 'ACTUATOR_HOST', path: ['actuator', 'host'], kind: 'string' },
  { env: 'ACTUATOR_PORT', path: ['actuator', 'port'], kind: 'int' },
  { env: 'ACTUATOR_MESSAGE_MIN_INTERVAL_MS', path: ['actuator', 'messageMinIntervalMs'], kind: 'int' },
  { env: 'ACTUATOR_INTERACTIVE_RESERVED_WRITES', path: ['actuator', 'interactiveReservedWrites'], kind: 'int' },
  { env: 'ACTUATOR_LOCK_MS', path: ['actuator', 'lockDurationMs'], kind: 'int' },
  { env: 'ACTUATOR_RECONCILE_INTERVAL_SECONDS', path: ['actuator', 'reconcileIntervalSeconds'], kind: 'int' },
  { env: 'ACTUATOR_READS_PER_SECOND', path: ['actuator', 'readsPerSecond'], kind: 'int' },
  { env: 'CONSOLE_CDR_INGEST_URL', path: ['console', 'serviceUrls', 'cdrIngest'], kind: 'string' },
  { env: 'CONSOLE_POLICY_WORKER_URL', path: ['console', 'serviceUrls', 'policyWorker'], kind: 'string' },
  { env: 'CONSOLE_CMS_ACTUATOR_URL', path: ['console', 'serviceUrls', 'cmsActuator'], kind: 'string' },
  { env: 'STORAGE_RETENTION_DAYS', path: ['storage', 'retentionDays'], kind: 'int' },
  { env: 'POLICY_SECURE_DOMAINS', path: ['policy', 'secureDomains'], kind: 'list' },
  { env: 'POLICY_INTERNAL_DOMAINS', path: ['policy', 'internalDomains'], kind: 'list' },
];
