import type { CdrBatch } from '@cms/cdr';

/**
 * Queue names and payload types, imported by producers and consumers alike so that every job type has
 * exactly one shape and one handler.
 */
export const CDR_BATCHES_QUEUE = 'cdr-batches';

/**
 * The job on CDR_BATCHES_QUEUE: the batches of one or more POSTs that arrived together (ingest group-commits
 * concurrent POSTs into one Redis write; each POST is answered 200 only once its job is stored).
 */
export interface CdrBatchesJob {
  batches: CdrBatchJob[];
}

/** A batch of CDRs as received from one POST by one Call Bridge. */
export interface CdrBatchJob {
  /** The node named in the receiver path (/cdr/<node>), mapped from callBridge, or null when unknown. */
  node: string | null;
  /** When ingest accepted the POST (ISO 8601). */
  receivedAt: string;
  batch: CdrBatch;
}

/**
 * One queue per CMS node so that one rate limiter covers every actuator replica writing to that node.
 * BullMQ does not allow ":" in queue names (it separates Redis key parts), hence "-".
 */
export function cmsWritesQueueName(node: string): string {
  return `cms-writes-${node}`;
}

/**
 * A CMS write for one node. Jobs carry only what to look at, not what to write: the actuator reads the latest
 * desired state from Postgres when it runs, so an older job can never write a superseded message.
 */
export type CmsWriteJob = { kind: 'callMessage'; callId: string };

/** Asks the actuator to reconcile one CMS node (read its active calls and legs) now. */
export const CMS_RECONCILE_QUEUE = 'cms-reconcile';
export interface CmsReconcileJob {
  node: string;
  /** Why: startup | periodic | cdrGap | bridgeRestart | nodeRecovered | manual */
  reason: string;
}

/** Asks the policy worker to recompute the meetings of these calls (after reconciliation changed what we know). */
export const POLICY_RECOMPUTE_QUEUE = 'policy-recompute';
export interface PolicyRecomputeJob {
  callIds: string[];
  reason: string;
}
