import { Counter, Gauge, Histogram, type Registry } from '@cms/observability';
import type { Redis } from '@cms/queue';
import type { Queue } from 'bullmq';

/** What the scrape-time metrics read: the configured nodes, the batch queue and the backlog ceiling. */
interface IngestMetricSources {
  /** Names of the configured CMS nodes (cms.nodes): each has its series from start-up, so a node that never sent shows up. */
  nodes: readonly string[];
  /** The CDR batch queue, read on each scrape (its job counts; one LINDEX and one HGET through `redis`). */
  queue: Queue;
  /** The connection the queue uses. */
  redis: Redis;
  /** ingest.maxBacklog, so dashboards and alerts can compare the backlog with the point where POSTs are refused. */
  maxBacklog: number;
}

/**
 * Age of the batch the policy workers will take next: the tail of BullMQ's wait list (jobs are pushed on the left
 * and taken from the right), read from its job hash. null when nothing waits.
 */
async function oldestWaitingAgeSeconds(queue: Queue, client: Redis): Promise<number | null> {
  const id = await client.lindex(queue.toKey('wait'), -1);
  if (id === null) return null;
  const created = Number(await client.hget(queue.toKey(id), 'timestamp'));
  // The job was taken between the two reads: the next one is younger than it was, so report nothing this time.
  if (!Number.isFinite(created) || created <= 0) return null;
  return Math.max(0, (Date.now() - created) / 1000);
}

/** A scrape must not wait on a Redis that does not answer (BullMQ waits for a first connection for ever). */
const SCRAPE_READ_TIMEOUT_MS = 1000;

function withinScrapeTimeout<T>(read: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Redis within ${SCRAPE_READ_TIMEOUT_MS} ms`)), SCRAPE_READ_TIMEOUT_MS);
  });
  return Promise.race([read, timeout]).finally(() => clearTimeout(timer));
}

export function createIngestMetrics(registry: Registry, sources?: IngestMetricSources) {
  const queueBatches = new Gauge({
    name: 'cdr_queue_batches',
    help: 'CDR batch jobs by BullMQ state: wait (backlog), active (in a worker), delayed (retry back-off), failed (given up after ~a day of retries, kept for an operator)',
    labelNames: ['state'],
    registers: [registry],
  });
  // Read at scrape time, not on a timer: as fresh as the scrape, and no Redis traffic without one. prom-client
  // awaits each metric's collect() before it renders the registry.
  const queue = sources?.queue;
  const redis = sources?.redis;
  const backlog = new Gauge({
    name: 'cdr_ingest_backlog_batches',
    help: 'Batches waiting for the policy worker (read from Redis at each scrape; also sampled by each POST)',
    registers: [registry],
    collect: queue
      ? async function () {
          try {
            const counts = await withinScrapeTimeout(queue.getJobCounts('wait', 'active', 'delayed', 'failed'));
            this.set(counts.wait ?? 0);
            for (const [state, n] of Object.entries(counts)) queueBatches.set({ state }, n);
          } catch {
            // Redis unreachable (service_ready says so): no value rather than a stale one that looks current.
            this.reset();
            queueBatches.reset();
          }
        }
      : undefined,
  });
  const oldestWaiting = new Gauge({
    name: 'cdr_ingest_oldest_waiting_batch_seconds',
    help: 'Age of the batch the policy workers will take next (0 when none waits); read from Redis at each scrape',
    registers: [registry],
    collect:
      queue && redis
        ? async function () {
            try {
              this.set((await withinScrapeTimeout(oldestWaitingAgeSeconds(queue, redis))) ?? 0);
            } catch {
              this.reset();
            }
          }
        : undefined,
  });
  const maxBacklog = new Gauge({
    name: 'cdr_ingest_max_backlog_batches',
    help: 'ingest.maxBacklog: at this many waiting batches POSTs are answered 503 (CMS keeps and re-sends them)',
    registers: [registry],
  });
  const metrics = {
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
      help: 'Valid CDRs acknowledged to CMS, by node (configured nodes start at 0)',
      labelNames: ['node'],
      registers: [registry],
    }),
    lastRecord: new Gauge({
      name: 'cdr_ingest_last_record_timestamp_seconds',
      help:
        'Unix time the last valid CDR from the node was acknowledged; a configured node that has sent nothing since this ' +
        'process started shows the start time, so its silence is counted from then',
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
    backlog,
    queueBatches,
    oldestWaiting,
    maxBacklog,
  };
  if (sources) {
    maxBacklog.set(sources.maxBacklog);
    const started = Date.now() / 1000;
    for (const node of sources.nodes) {
      metrics.records.inc({ node }, 0);
      metrics.lastRecord.set({ node }, started);
    }
  }
  return metrics;
}
export type IngestMetrics = ReturnType<typeof createIngestMetrics>;
