import { Counter, Gauge, Histogram, type Registry } from '@cms/observability';

export function createIngestMetrics(registry: Registry) {
  return {
    posts: new Counter({
      name: 'cdr_ingest_posts_total',
      help: 'CDR POSTs by outcome (accepted, bad_request, unauthorized, too_large, unavailable)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    refused: new Counter({
      name: 'cdr_ingest_posts_refused_total',
      help: 'CDR POSTs not acknowledged, by reason (redis_unavailable, redis_error, backlog, too_large, bad_request, unauthorized, ...)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    records: new Counter({
      name: 'cdr_ingest_records_total',
      help: 'Valid CDRs acknowledged to CMS',
      labelNames: ['node'],
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'cdr_ingest_records_quarantined_total',
      help: 'CDRs that failed validation and were acknowledged into quarantine',
      registers: [registry],
    }),
    ackSeconds: new Histogram({
      name: 'cdr_ingest_ack_seconds',
      help: 'Time from request start to 200 (batch stored in Redis)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    backlog: new Gauge({
      name: 'cdr_ingest_backlog_batches',
      help: 'Batches waiting for the policy worker (last sample)',
      registers: [registry],
    }),
  };
}
export type IngestMetrics = ReturnType<typeof createIngestMetrics>;
