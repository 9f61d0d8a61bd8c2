import type { JobsOptions } from 'bullmq';

/**
 * CDR batches are retried with capped exponential back-off for about a day before they stay in the
 * failed set (kept, never deleted) for an operator to retry: losing records is worse than a stuck job.
 */
export const CDR_BATCH_JOB_OPTIONS: JobsOptions = {
  attempts: 1500,
  backoff: { type: 'capped' },
  removeOnComplete: true,
  removeOnFail: false,
};

const CDR_BACKOFF_CAP_MS = 60_000;

/** Back-off for 'capped': 250 ms doubling up to a minute, with jitter so replicas do not retry in step. */
export function cappedBackoff(attemptsMade: number): number {
  const base = Math.min(250 * 2 ** Math.max(0, attemptsMade - 1), CDR_BACKOFF_CAP_MS);
  return Math.round(base / 2 + Math.random() * (base / 2));
}
