import type { CdrBatch } from '@cms/cdr';
import { type Job, type JobsOptions, Queue, type QueueOptions } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * The job graph: every BullMQ queue of the system, what its jobs carry, how they are retried and kept, and the
 * helper that adds them. Producers and consumers import from here only, so a job type has exactly one shape, one
 * set of options and one handler.
 *
 * | Queue               | Payload              | Produced by                                                         | Consumed by             |
 * | ------------------- | -------------------- | ------------------------------------------------------------------- | ----------------------- |
 * | `cdr-batches`       | `CdrBatchesJob`      | cdr-ingest (each group of POSTs that arrived together)              | policy-worker           |
 * | `cms-writes-<node>` | `CmsWriteJob`        | policy-worker (desired message changed); cms-actuator (follow-ups,  | cms-actuator (one       |
 * |                     |                      | pending sweep, reconciliation, call placement); records-api         | worker per CMS node)    |
 * |                     |                      | (operator actions, one step per node)                               |                         |
 * | `cms-reconcile`     | `CmsReconcileJob`    | policy-worker (CDR gap, bridge restart); cms-actuator (start-up,    | cms-actuator            |
 * |                     |                      | periodic, node recovered)                                           |                         |
 * | `policy-recompute`  | `PolicyRecomputeJob` | cms-actuator (reconciliation or placement changed what we know)     | policy-worker           |
 *
 * Each queue is made by its factory below, which sets the queue's `defaultJobOptions` once; the add helpers pass
 * only what differs per job (a deduplication id). Only a queue made by the factory is accepted by its add helper
 * (the types say so), so no producer can add a job without its retry and removal options.
 */

/** The connection and key prefix every queue of one deployment shares (`queue.prefix` in the configuration). */
export type QueueConnection = Pick<QueueOptions, 'connection' | 'prefix'>;

declare const defaults: unique symbol;
/** A queue made by its factory here, so its `defaultJobOptions` are set. */
type QueueWithDefaults<Payload, Name extends string> = Queue<Payload> & { readonly [defaults]: Name };

function queueWithDefaults<Payload, Name extends string>(
  name: string,
  connection: QueueConnection,
  defaultJobOptions: JobsOptions,
): QueueWithDefaults<Payload, Name> {
  return new Queue<Payload>(name, { ...connection, defaultJobOptions }) as QueueWithDefaults<Payload, Name>;
}

/**
 * The one back-off formula: retry `attemptsMade` (1 = first retry) waits `baseMs` doubling per attempt up to
 * `maxMs`, with jitter over the upper half so replicas that failed together do not retry in step.
 */
export function cappedExponentialDelay(attemptsMade: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(baseMs * 2 ** Math.max(0, attemptsMade - 1), maxMs);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

// ---- cdr-batches: cdr-ingest -> policy-worker -------------------------------------------------------------------

export const CDR_BATCHES_QUEUE = 'cdr-batches';

/** A batch of CDRs as received from one POST by one Call Bridge, with where and when it arrived. */
export interface ReceivedCdrBatch {
  /** The node named in the receiver path (/cdr/<node>), mapped from callBridge, or null when unknown. */
  node: string | null;
  /** When ingest accepted the POST (ISO 8601). */
  receivedAt: string;
  batch: CdrBatch;
}

/**
 * The job on CDR_BATCHES_QUEUE: the received batches of one or more POSTs that arrived together (ingest
 * group-commits concurrent POSTs into one Redis write; each POST is answered 200 only once its job is stored).
 */
export interface CdrBatchesJob {
  batches: ReceivedCdrBatch[];
}

/** Back-off type of CDR batch jobs; the policy worker's Worker implements it with `cdrBatchBackoff`. */
const CDR_BATCH_BACKOFF_TYPE = 'capped';
const CDR_BACKOFF_BASE_MS = 250;
const CDR_BACKOFF_CAP_MS = 60_000;

/**
 * CDR batches are retried with capped exponential back-off for about a day before they stay in the failed set
 * (kept, never deleted) for an operator to retry: losing records is worse than a stuck job.
 */
const CDR_BATCHES_JOB_OPTIONS: JobsOptions = {
  attempts: 1500,
  backoff: { type: CDR_BATCH_BACKOFF_TYPE },
  removeOnComplete: true,
  removeOnFail: false,
};

/** Back-off for CDR batch jobs (the Worker's `settings.backoffStrategy`): 250 ms doubling up to a minute. */
export function cdrBatchBackoff(attemptsMade: number): number {
  return cappedExponentialDelay(attemptsMade, CDR_BACKOFF_BASE_MS, CDR_BACKOFF_CAP_MS);
}

export type CdrBatchesQueue = QueueWithDefaults<CdrBatchesJob, 'cdr-batches'>;

export function createCdrBatchesQueue(connection: QueueConnection): CdrBatchesQueue {
  return queueWithDefaults<CdrBatchesJob, 'cdr-batches'>(CDR_BATCHES_QUEUE, connection, CDR_BATCHES_JOB_OPTIONS);
}

/** Stores the batches of POSTs that arrived together as one job; resolves once Redis has it. */
export function addCdrBatches(queue: CdrBatchesQueue, batches: ReceivedCdrBatch[]): Promise<Job<CdrBatchesJob>> {
  return queue.add(CDR_BATCHES_QUEUE, { batches });
}

// ---- cms-writes-<node>: policy-worker and cms-actuator -> cms-actuator ------------------------------------------

/**
 * One queue per CMS node so that one rate limiter covers every actuator replica writing to that node.
 * BullMQ does not allow ":" in queue names (it separates Redis key parts), hence "-".
 */
export function cmsWritesQueueName(node: string): string {
  return `cms-writes-${node}`;
}

/** The kinds of operator action steps (libs/db's OPERATOR_ACTION_KINDS; the actuator's HANDLERS cover each). */
export type OperatorActionJobKind =
  | 'addParticipant'
  | 'updateCallLeg'
  | 'updateAllParticipants'
  | 'presenterOn'
  | 'presenterOff'
  | 'deleteCallLeg'
  | 'deleteCall'
  | 'admitParticipants';

/** One node's step of an operator action: the actuator reads what to write from operator_action_steps. */
export interface OperatorActionJob {
  kind: OperatorActionJobKind;
  actionId: number;
  step: number;
}

/**
 * A CMS write for one node. Jobs carry only what to look at, not what to write: the actuator reads the latest
 * desired state (or the action's step) from Postgres when it runs, so an older job can never write a superseded message.
 */
export type CmsWriteJob = { kind: 'callMessage'; callId: string } | OperatorActionJob;

/** Attempts for a write that keeps failing with 5xx/timeouts before it is dead-lettered (503s and held writes do not count). */
export const CMS_WRITE_ATTEMPTS = 8;

/**
 * Back-off type of CMS write jobs; the actuator's Worker implements it with `cappedExponentialDelay` and its
 * tuning (retryBaseDelayMs, retryMaxDelayMs).
 */
export const CMS_WRITE_BACKOFF_TYPE = 'cmsWrite';

const CMS_WRITES_JOB_OPTIONS: JobsOptions = {
  attempts: CMS_WRITE_ATTEMPTS,
  backoff: { type: CMS_WRITE_BACKOFF_TYPE },
  removeOnComplete: true,
  // Dead-lettered jobs stay a week for an operator to look at or retry.
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
};

export type CmsWritesQueue = QueueWithDefaults<CmsWriteJob, 'cms-writes'>;

export function createCmsWritesQueue(node: string, connection: QueueConnection): CmsWritesQueue {
  return queueWithDefaults<CmsWriteJob, 'cms-writes'>(cmsWritesQueueName(node), connection, CMS_WRITES_JOB_OPTIONS);
}

/** One deduplication id per call: every desired-state change of a call shares it. */
export function callMessageDeduplicationId(callId: string): string {
  return `callMessage:${callId}`;
}

/**
 * What every producer calls after committing a change to call_messages (desired state first, then the job).
 * Deduplicated per call with `keepLastIfActive`: while a job for the call waits, further adds are dropped (the
 * waiting job reads the newest desired state when it runs); while one is being processed, one follow-up job is kept
 * and queued when it finishes, so a change made during a write is never lost. A burst of joins therefore costs one
 * or two writes. Job ids are left to BullMQ (a fixed id would collide with the follow-up job).
 */
export async function enqueueCallMessageWrite(queue: CmsWritesQueue, callId: string): Promise<void> {
  await queue.add(
    'callMessage',
    { kind: 'callMessage', callId },
    { deduplication: { id: callMessageDeduplicationId(callId), keepLastIfActive: true } },
  );
}

/**
 * Queues one step of an operator action on its node's write queue, at the head of the wait list (`lifo`): an
 * operator waits for it, so it must not queue behind a burst of message writes, sweeps or reconciliation follow-ups
 * (the node's worker takes it next; the write ceiling still counts its writes). Two actions waiting at once may so
 * run in either order, as they may anyway with several jobs in hand per node. The job id is the step's, so a step
 * is queued once however often this is called (a retried request, a crash between storing the action and queueing it).
 */
export async function enqueueOperatorActionStep(queue: CmsWritesQueue, job: OperatorActionJob, announce: Redis): Promise<void> {
  await queue.add(job.kind, job, { jobId: operatorActionJobId(job), lifo: true, attempts: OPERATOR_ACTION_ATTEMPTS });
  // Wakes the node's interactive lane at once (a lost announcement only leaves the job to the node's worker).
  await announce.publish(operatorActionsChannel(queue.opts.prefix ?? 'bull', queue.name), job.kind);
}

/** One job id per step: queueing a step again while its job exists adds nothing. */
export function operatorActionJobId(job: Pick<OperatorActionJob, 'actionId' | 'step'>): string {
  return `action-${job.actionId}-${job.step}`;
}

/** The Redis channel on which the adds of operator action steps to a node's write queue are announced. */
export function operatorActionsChannel(prefix: string, queueName: string): string {
  return `${prefix}:${queueName}:operator-actions`;
}

/** An operator is waiting: a step that keeps failing (5xx, timeouts) is reported failed after a few tries, not a week. */
const OPERATOR_ACTION_ATTEMPTS = 3;

// ---- cms-reconcile: policy-worker and cms-actuator -> cms-actuator ----------------------------------------------

/** Asks the actuator to reconcile one CMS node (read its active calls and legs) now. */
export const CMS_RECONCILE_QUEUE = 'cms-reconcile';
export interface CmsReconcileJob {
  node: string;
  /** Why: startup | periodic | cdrGap | bridgeRestart | nodeRecovered | manual */
  reason: string;
}

/** A pass that cannot finish (CMS unreachable longer than its reads retry) is tried again a few times. */
const CMS_RECONCILE_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 5000 },
  removeOnComplete: true,
  removeOnFail: 100,
};

/** Start-up requests of replicas starting together collapse into one pass per node. */
const STARTUP_DEDUP_MS = 10_000;

export type CmsReconcileQueue = QueueWithDefaults<CmsReconcileJob, 'cms-reconcile'>;

export function createCmsReconcileQueue(connection: QueueConnection): CmsReconcileQueue {
  return queueWithDefaults<CmsReconcileJob, 'cms-reconcile'>(CMS_RECONCILE_QUEUE, connection, CMS_RECONCILE_JOB_OPTIONS);
}

/**
 * Queues a pass of `node`. Requests collapse per node and reason: one for a node that already has one waiting joins
 * it (a burst of gaps costs one pass); one made while a pass runs is kept and runs after it, because the running
 * pass may have read the node before whatever prompted the request (a time-based throttle would drop the request of
 * a bridge that restarts shortly after an earlier pass). Start-up requests of replicas starting together collapse
 * into one pass for a few seconds instead.
 */
export async function requestReconcile(queue: CmsReconcileQueue, node: string, reason: CmsReconcileJob['reason']): Promise<void> {
  const deduplication =
    reason === 'startup'
      ? { id: `reconcile-startup-${node}`, ttl: STARTUP_DEDUP_MS }
      : { id: `reconcile-${reason}-${node}`, keepLastIfActive: true };
  await queue.add('reconcile', { node, reason }, { deduplication });
}

// ---- policy-recompute: cms-actuator -> policy-worker ------------------------------------------------------------

/** Asks the policy worker to recompute the meetings of these calls (after reconciliation changed what we know). */
export const POLICY_RECOMPUTE_QUEUE = 'policy-recompute';
export interface PolicyRecomputeJob {
  callIds: string[];
  reason: string;
  /**
   * The leg or participant ids whose live view changed, when the asker knows them (the events feed): the worker then
   * reads only their legs. Without them it reads every leg of the calls.
   */
  participants?: string[];
}

/** A recompute that fails (Postgres away) is retried; it only re-derives state, so running it late is harmless. */
const POLICY_RECOMPUTE_JOB_OPTIONS: JobsOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
  removeOnFail: 1000,
};

export type PolicyRecomputeQueue = QueueWithDefaults<PolicyRecomputeJob, 'policy-recompute'>;

export function createPolicyRecomputeQueue(connection: QueueConnection): PolicyRecomputeQueue {
  return queueWithDefaults<PolicyRecomputeJob, 'policy-recompute'>(POLICY_RECOMPUTE_QUEUE, connection, POLICY_RECOMPUTE_JOB_OPTIONS);
}

export async function requestRecompute(
  queue: PolicyRecomputeQueue,
  callIds: string[],
  reason: string,
  participants?: string[],
): Promise<void> {
  await queue.add('recompute', participants ? { callIds, reason, participants } : { callIds, reason });
}
