import type { CmsWriteJob } from '@cms/queue';
import type { JobsOptions, Queue } from 'bullmq';

/** Attempts for a write that keeps failing with 5xx/timeouts before it is dead-lettered (503s and held writes do not count). */
export const CMS_WRITE_ATTEMPTS = 8;

/** Back-off type the actuator's worker implements (exponential with jitter, capped). */
export const CMS_WRITE_BACKOFF_TYPE = 'cmsWrite';

/** One deduplication id per call: every desired-state change of a call shares it. */
export function callMessageDeduplicationId(callId: string): string {
  return `callMessage:${callId}`;
}

/**
 * Job options for a call's message write. Deduplicated per call with `keepLastIfActive`: while a job for the call
 * waits, further adds are dropped (the waiting job reads the newest desired state when it runs); while one is being
 * processed, one follow-up job is kept and queued when it finishes, so a change made during a write is never lost.
 * A burst of joins therefore costs one or two writes. Job ids are left to BullMQ (a fixed id would collide with the
 * follow-up job).
 */
export function callMessageJobOptions(callId: string): JobsOptions {
  return {
    deduplication: { id: callMessageDeduplicationId(callId), keepLastIfActive: true },
    attempts: CMS_WRITE_ATTEMPTS,
    backoff: { type: CMS_WRITE_BACKOFF_TYPE },
    removeOnComplete: true,
    // Dead-lettered jobs stay a week for an operator to look at or retry.
    removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
  };
}

/**
 * What every producer calls after committing a change to call_messages (desired state first, then the job):
 * `await enqueueCallMessageWrite(queueFor(node), callId)` on the queue named `cmsWritesQueueName(node)` with the
 * configured `queue.prefix`.
 */
export async function enqueueCallMessageWrite(queue: Queue<CmsWriteJob>, callId: string): Promise<void> {
  const job: CmsWriteJob = { kind: 'callMessage', callId };
  await queue.add('callMessage', job, callMessageJobOptions(callId));
}
