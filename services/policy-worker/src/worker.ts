import type { Config } from '@cms/config';
import type { Database } from '@cms/db';
import type { Logger } from '@cms/observability';
import { CDR_BATCHES_QUEUE, type CdrBatchesJob, cdrBatchBackoff, GroupCommitter, type ReceivedCdrBatch, type Redis } from '@cms/queue';
import { Worker } from 'bullmq';
import type { WorkerMetrics } from './metrics.ts';
import { storeRecordByRecord } from './refused-records.ts';
import type { PolicyOutcome } from './security/apply-policy.ts';
import type { createWriteEnqueuer } from './security/enqueue-writes.ts';
import type { createReconcileRequester } from './security/reconcile-requests.ts';
import type { OutageGuard } from './storage/outage.ts';
import { againIfAbortedForAnother, classifyFailure, describeFailure } from './storage/pg-failure.ts';
import { type SecurityPolicyOptions, type StoreResult, storeBatches } from './store-batches.ts';

export interface BatchWorkerOptions {
  config: Config;
  db: Database;
  /** The worker's own connection (a blocking one: BullMQ waits for jobs on it). */
  connection: Redis;
  log: Logger;
  metrics: WorkerMetrics;
  security: SecurityPolicyOptions;
  outage: OutageGuard;
  enqueueWrites: ReturnType<typeof createWriteEnqueuer>;
  requestReconcile: ReturnType<typeof createReconcileRequester>;
  /** Logs and counts the level changes of a commit. */
  logDecisions: (outcome: PolicyOutcome) => void;
}

/**
 * The job processing of the policy worker: takes CDR batch jobs (created paused: the caller runs it), stores their
 * batches in group commits with the security decisions they call for, and then hands the CMS writes and the
 * reconciliation requests those commits call for to the actuator.
 */
export function createBatchWorker(options: BatchWorkerOptions): Worker<CdrBatchesJob> {
  const { config, db, log, metrics, security, outage, enqueueWrites, requestReconcile } = options;

  const store = async (jobs: ReceivedCdrBatch[]): Promise<StoreResult> => {
    try {
      return await againIfAbortedForAnother(
        () => outage.run(() => storeBatches(db, jobs, security)),
        (err) =>
          log.info({ batches: jobs.length, err: describeFailure(err) }, 'group commit aborted for another transaction: run again at once'),
      );
    } catch (err) {
      // A value Postgres refuses would fail this batch on every retry, and its valid records with it. In a group,
      // the committer first retries each batch alone (isolateFailures); alone, it is stored record by record.
      if (jobs.length !== 1 || classifyFailure(err) !== 'refused') throw err;
      return storeRecordByRecord(db, jobs[0]!, security, outage.run);
    }
  };

  const committer = new GroupCommitter<ReceivedCdrBatch, StoreResult>({
    commit: async (jobs) => {
      const result = await store(jobs);
      // After the commit: the actuator must never read a desired state older than the job that points at it.
      await enqueueWrites(result.policy.writes);
      for (const gap of result.gaps) await requestReconcile(gap.node, 'cdrGap');
      for (const session of result.newSessions) await requestReconcile(session.node, 'bridgeRestart');
      return result;
    },
    size: (job) => Math.max(1, job.batch.records.length),
    maxGroupSize: config.policyWorker.maxRecordsPerCommit,
    isolateFailures: true,
    // One commit at a time per worker: measured, a second one in flight mostly waits on the first one's leg and
    // meeting locks (consecutive records of a call land in consecutive groups) and costs Postgres more CPU.
    // Replicas still commit concurrently; the locks keep their decisions consistent.
    maxInFlight: 1,
    onCommitted: (jobs, result, ms) => {
      metrics.records.inc(result.inserted);
      metrics.duplicates.inc(result.duplicates);
      metrics.quarantined.inc(result.quarantined);
      metrics.commitSeconds.observe(ms / 1000);
      metrics.groupBatches.observe(jobs.length);
      options.logDecisions(result.policy);
      for (const refused of result.refused ?? [])
        log.warn(refused, 'record refused by Postgres: quarantined, the rest of its batch stored');
      for (const gap of result.gaps) {
        metrics.gaps.inc({ node: gap.node ?? 'unknown' }, gap.missing);
        log.warn(gap, 'CMS discarded CDRs before this record (numPreceedingRecordsMissing): they are lost');
      }
      log.debug({ batches: jobs.length, inserted: result.inserted, duplicates: result.duplicates, ms: Math.round(ms) }, 'group committed');
    },
  });

  // A job holds the batches of POSTs that arrived together; each batch joins the next group commit.
  const worker = new Worker<CdrBatchesJob>(
    CDR_BATCHES_QUEUE,
    async (job) => {
      await Promise.all(job.data.batches.map((batch) => committer.submit(batch)));
    },
    {
      connection: options.connection,
      prefix: config.queue.prefix,
      concurrency: config.policyWorker.concurrency,
      lockDuration: config.policyWorker.lockDurationMs,
      // Look for batches of crashed workers as often as a lock can expire.
      stalledInterval: config.policyWorker.lockDurationMs,
      // A batch whose worker died (kill -9, OOM) is taken over; crashes are not the batch's fault, so allow several.
      maxStalledCount: 10,
      settings: { backoffStrategy: cdrBatchBackoff },
      autorun: false,
    },
  );
  worker.on('failed', (job, err) => {
    metrics.batchFailures.inc();
    log.warn(
      { jobId: job?.id, attempt: job?.attemptsMade, failure: classifyFailure(err), err: describeFailure(err) },
      'batch not stored: will retry',
    );
  });
  worker.on('error', (err) => log.warn({ err }, 'worker error'));
  return worker;
}
