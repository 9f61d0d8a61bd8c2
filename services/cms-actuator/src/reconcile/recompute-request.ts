import type { PolicyRecomputeJob } from '@cms/queue';
import type { JobsOptions, Queue } from 'bullmq';
import type { RecomputeRequest } from './node-reconciler.ts';

/** A recompute that fails (Postgres away) is retried; it only re-derives state, so running it late is harmless. */
const RECOMPUTE_JOB_OPTIONS: JobsOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
  removeOnFail: 1000,
};

/**
 * Hands calls to the policy worker (POLICY_RECOMPUTE_QUEUE) after reconciliation or placement changed what we know
 * of them: the actuator never decides a level itself, so both paths (CDRs and the API) always agree.
 */
export function createRecomputeRequester(queue: Queue<PolicyRecomputeJob>): RecomputeRequest {
  return async (callIds, reason) => {
    await queue.add('recompute', { callIds, reason }, RECOMPUTE_JOB_OPTIONS);
  };
}
