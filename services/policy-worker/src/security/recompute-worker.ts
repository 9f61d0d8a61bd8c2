import type { Database } from '@cms/db';
import type { Logger } from '@cms/observability';
import type { CompiledPolicy } from '@cms/policy';
import { POLICY_RECOMPUTE_QUEUE, type PolicyRecomputeJob, type Redis } from '@cms/queue';
import { Worker } from 'bullmq';
import { againIfAbortedForAnother, describeFailure } from '../storage/pg-failure.ts';
import { applySecurityPolicy, type PolicyOutcome } from './apply-policy.ts';

/**
 * Recomputes meetings on request: reconciliation found calls or legs we had no CDRs for, or the events feed saw the
 * roster change. Same decision, same locks and same transaction shape as after a CDR batch, so both paths always
 * agree. The requested calls are read from every leg (the meeting's other instances from their stored participants),
 * unless the request names the participants whose live view changed: then only their legs are read.
 */
export function startRecomputeWorker(options: {
  connection: Redis;
  prefix: string;
  db: Database;
  compiled: CompiledPolicy;
  managedNodes: ReadonlySet<string>;
  log: Logger;
  /** Waits while Postgres is unavailable and runs the transaction again (the worker's outage guard). */
  whilePostgresUnavailable: <T>(work: () => Promise<T>) => Promise<T>;
  onDecided: (outcome: PolicyOutcome) => Promise<void>;
}): Worker<PolicyRecomputeJob> {
  const worker = new Worker<PolicyRecomputeJob>(
    POLICY_RECOMPUTE_QUEUE,
    async (job) => {
      const callIds = [...new Set(job.data.callIds)].sort();
      // The events feed says whose live view changed: only their legs are read again.
      const live = job.data.participants ? { liveIds: [...new Set(job.data.participants)].sort() } : {};
      const outcome = await againIfAbortedForAnother(
        () =>
          options.whilePostgresUnavailable(() =>
            options.db.transaction((tx) =>
              applySecurityPolicy(tx, { legIds: [], callIds, reread: true, ...live }, options.compiled, options.managedNodes),
            ),
          ),
        (err) =>
          options.log.info(
            { calls: callIds.length, err: describeFailure(err) },
            'recompute aborted for another transaction: run again at once',
          ),
      );
      await options.onDecided(outcome);
      options.log.debug({ calls: callIds.length, reason: job.data.reason, writes: outcome.writes.length }, 'meetings recomputed');
    },
    { connection: options.connection, prefix: options.prefix, concurrency: 4 },
  );
  worker.on('error', (err) => options.log.warn({ err }, 'recompute worker error'));
  worker.on('failed', (job, err) => options.log.warn({ jobId: job?.id, err }, 'recompute failed: will retry'));
  return worker;
}
