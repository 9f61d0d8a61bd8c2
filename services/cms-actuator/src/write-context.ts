import type { CmsClient } from '@cms/cms';
import type { Database } from '@cms/db';
import type { Logger } from '@cms/observability';
import type { CmsWriteJob, CmsWritesQueue, OperatorActionJob } from '@cms/queue';
import type { BusyBackoff } from './busy-backoff.ts';
import type { WriteRecord } from './desired-state.ts';
import type { NodeHealth } from './node-health.ts';
import type { RequestGate } from './request-gate.ts';

/** The outcome of one write job, as stored in cms_writes, counted and logged. `metricOutcome` splits 503s from retries. */
export type WriteOutcome = Omit<WriteRecord, 'node' | 'kind'> & { metricOutcome?: string };

/** Another configured node's writer, as an operator action handed over to the bridge hosting its target sees it. */
export interface PeerWriter {
  name: string;
  /** The node's callBridge GUID when configured (cms.nodes[].callBridgeId). */
  callBridgeId: string | undefined;
  client: CmsClient;
  /** Queues an operator action step on this node's write queue. */
  enqueueAction(job: OperatorActionJob): Promise<void>;
}

/** Everything a job handler of one node uses. */
export interface WriteContext {
  node: string;
  db: Database;
  client: CmsClient;
  gate: RequestGate;
  health: NodeHealth;
  busy: BusyBackoff;
  queue: CmsWritesQueue;
  log: Logger;
  /** Least time between two message writes to one call. */
  callMessageMinIntervalMs: number;
  /** The policy's message texts and the level each shows (levelsOfMessageTexts): a change to a worse level skips the interval. */
  messageLevels: ReadonlyMap<string, number>;
  /**
   * When CMS answered this replica's latest message PUT of a call (Date.now()), and the version it wrote. The
   * interval counts from there: the cms_writes row of that PUT is stored after the answer, later still under load.
   */
  lastAnswers: Map<string, { version: number; at: number }>;
  /** Every configured node's writer (this one included), by node name. */
  peers(): ReadonlyMap<string, PeerWriter>;
  /** Pauses the node's whole queue (every replica) for `ms`. */
  rateLimit(ms: number): Promise<void>;
  /** Stores, counts and logs one outcome (one cms_writes row and one log line per write job attempt). */
  record(kind: CmsWriteJob['kind'], outcome: WriteOutcome): Promise<void>;
}

/** Adds up the time a job spent waiting for CMS's answers over its requests (its write record's `latencyMs`). */
export function cmsStopwatch() {
  let totalMs = 0;
  return {
    async timed<T>(request: () => Promise<T>): Promise<T> {
      const started = performance.now();
      try {
        return await request();
      } finally {
        totalMs += performance.now() - started;
      }
    },
    get totalMs() {
      return totalMs;
    },
  };
}
