import { Counter, Histogram, type Registry } from '@cms/observability';

/**
 * The policy worker's metrics. Each configured node's gap counter starts at 0, so the first gap a node reports is an
 * increase Prometheus can see (a series born at 3 has no increase), for the CdrGap alert and the gaps panel.
 */
export function createWorkerMetrics(registry: Registry, nodes: readonly string[] = []) {
  const metrics = {
    records: new Counter({ name: 'cdr_records_stored_total', help: 'CDRs newly stored in Postgres', registers: [registry] }),
    duplicates: new Counter({
      name: 'cdr_records_duplicate_total',
      help: 'CDRs received again and skipped (already stored)',
      registers: [registry],
    }),
    quarantined: new Counter({ name: 'cdr_records_quarantined_total', help: 'Invalid CDRs stored in quarantine', registers: [registry] }),
    gaps: new Counter({
      name: 'cdr_gaps_total',
      help: 'Records CMS reported as discarded (numPreceedingRecordsMissing), by node',
      labelNames: ['node'],
      registers: [registry],
    }),
    batchFailures: new Counter({
      name: 'cdr_batch_failures_total',
      help: 'Batch processing attempts that failed (retried)',
      registers: [registry],
    }),
    levelChanges: new Counter({
      name: 'meeting_level_changes_total',
      help: 'Meeting security level changes, by new level (none = nobody counted, message cleared)',
      labelNames: ['to'],
      registers: [registry],
    }),
    writesEnqueued: new Counter({
      name: 'cms_writes_enqueued_total',
      help: 'CMS message writes handed to the actuator',
      labelNames: ['node'],
      registers: [registry],
    }),
    enqueueFailures: new Counter({
      name: 'cms_write_enqueue_failures_total',
      help: 'CMS writes that could not be queued (Redis down); the actuator sweep picks up their pending desired state',
      registers: [registry],
    }),
    commitSeconds: new Histogram({
      name: 'cdr_group_commit_seconds',
      help: 'Duration of one group commit',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    decisionSeconds: new Histogram({
      name: 'policy_decision_seconds',
      help: "One transaction's security decisions (load, decide, persist; not the wait for the meetings' locks), by what they read: changed = the changed legs and each instance's worst stored participant, all = every leg of at least one call instance (a recompute's calls, an instance decided for the first time)",
      labelNames: ['legs'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    decisionLegs: new Histogram({
      name: 'policy_decision_legs_read',
      help: "Legs one transaction's security decisions read and classified, by what they read (as policy_decision_seconds)",
      labelNames: ['legs'],
      buckets: [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
      registers: [registry],
    }),
    groupBatches: new Histogram({
      name: 'cdr_group_commit_batches',
      help: 'Batches written by one group commit',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
  };
  for (const node of nodes) metrics.gaps.inc({ node }, 0);
  return metrics;
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
