import { CmsApiError } from '@cms/cms';
import type { CmsNodeConfig } from '@cms/config';
import type { Database } from '@cms/db';
import type { Logger } from '@cms/observability';
import { enqueueCallMessageWrite, type Redis } from '@cms/queue';
import type { ActuatorMetrics } from '../metrics.ts';
import type { NodeWriter } from '../node-writer.ts';
import { RequestGate } from '../request-gate.ts';
import type { ActuatorTuning } from '../tuning.ts';
import { reconcileMessages } from './message-reapply.ts';
import { observeNode } from './observe-node.ts';
import { PacedReadClient, ReadsAbortedError, readCeiling } from './paced-read-client.ts';
import { activeCallIds, databaseNow, knownLegIds, stalestFirst, storeSnapshot } from './snapshot-store.ts';

export type PassOutcome = 'ok' | 'held' | 'failed' | 'aborted';

/** Asks the policy worker to decide the meetings of these calls again (it alone decides levels). */
/** `participants`: whose live view changed, when known (the policy worker then reads only their legs). */
export type RecomputeRequest = (callIds: string[], reason: string, participants?: string[]) => Promise<void>;

export interface NodeReconcilerDeps {
  node: CmsNodeConfig;
  writer: NodeWriter;
  db: Database;
  redis: Redis;
  prefix: string;
  log: Logger;
  metrics: ActuatorMetrics;
  tuning: ActuatorTuning;
  readsPerSecond: number;
  requestRecompute: RecomputeRequest;
  /** The texts of policy.messages: a clear is only re-applied over one of these. */
  ourTexts: ReadonlySet<string>;
  /** Whether the node's events feed is live: its rows are then its own to remove (see storeSnapshot). */
  eventsLive?: () => boolean;
  /**
   * Legs we hold CDRs for whose live state a pass reads while the node's feed is not live (observeNode's
   * knownLegs); default LIVE_READ_SECONDS of the node's read ceiling.
   */
  knownLegsPerPass?: number;
}

/**
 * Without the events feed a pass also reads the live state (mutes, layout, importance) of legs we hold CDRs for,
 * two reads a leg (the leg, its participant), at most this many seconds' worth of the node's read ceiling per pass
 * (300 legs at the default 20 reads/s); a node with more legs is read in turns, the stalest first.
 */
const LIVE_READ_SECONDS = 30;

/**
 * Re-reads one node's active calls from its API and brings what we know in line with it: meetings that began before
 * we ran, legs whose CDRs CMS discarded, calls that vanished in a restart, messages someone cleared. Passes of one
 * node run one at a time in this process (across replicas the queue's deduplication and a database lock keep them
 * apart, and a second pass is harmless).
 */
export class NodeReconciler {
  readonly name: string;
  /** Paced reads for this node (reconciliation and call placement). */
  readonly client: PacedReadClient;
  readonly #d: NodeReconcilerDeps;
  readonly #abort = new AbortController();
  #tail: Promise<unknown> = Promise.resolve();

  constructor(deps: NodeReconcilerDeps) {
    const { node, redis, prefix, tuning, metrics } = deps;
    this.#d = deps;
    this.name = node.name;
    const gate = new RequestGate(redis, `${prefix}:cms-read-gate:${node.name}`, readCeiling(deps.readsPerSecond), 0);
    this.client = new PacedReadClient(node, {
      connectTimeoutMs: tuning.connectTimeoutMs,
      requestTimeoutMs: tuning.requestTimeoutMs,
      // Reads are sequential: one connection is all a pass uses.
      connections: 2,
      gate,
      signal: this.#abort.signal,
      busyInitialDelayMs: tuning.busyInitialDelayMs,
      busyMaxDelayMs: tuning.busyMaxDelayMs,
      retryBaseDelayMs: tuning.retryBaseDelayMs,
      retryMaxDelayMs: tuning.retryMaxDelayMs,
      busyRetries: tuning.readBusyRetries,
      retries: tuning.readRetries,
      onRequest: () => metrics.reads.inc({ node: node.name }),
    });
  }

  /** Whether the node accepts our credentials (its writes are not held). */
  get healthy(): boolean {
    return this.#d.writer.health.healthy;
  }

  /** `listener` runs when the node accepts our requests again after refusing them. */
  onRecovered(listener: () => void): void {
    this.#d.writer.health.onRecovered(listener);
  }

  /** One pass; passes requested while one runs wait for it. */
  runPass(reason: string): Promise<PassOutcome> {
    const run = this.#tail.then(() => this.#pass(reason));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Stops between two reads: a pass in progress (and a placement lookup) ends as 'aborted'; no new pass starts. */
  stop(): void {
    this.#abort.abort();
  }

  async close(): Promise<void> {
    this.stop();
    await this.#tail;
    await this.client.close();
  }

  get closing(): boolean {
    return this.#abort.signal.aborted;
  }

  async #pass(reason: string): Promise<PassOutcome> {
    const { db, log, metrics, writer } = this.#d;
    const node = this.name;
    if (this.closing) return this.#count('aborted');
    if (!writer.health.healthy) {
      // Its health probe brings it back; the next pass (periodic or requested) then catches up.
      log.warn({ node, reason, why: writer.health.reason }, 'reconciliation skipped: the CMS node refuses our requests');
      return this.#count('held');
    }
    const started = performance.now();
    try {
      const passStartedAt = await databaseNow(db);
      const eventsLive = this.#d.eventsLive?.() ?? false;
      const knownLegs = eventsLive ? 0 : (this.#d.knownLegsPerPass ?? Math.ceil((this.#d.readsPerSecond * LIVE_READ_SECONDS) / 2));
      const snapshot = await observeNode(
        this.client,
        {
          activeCallIds: () => activeCallIds(db, node, passStartedAt),
          knownLegIds: (ids) => knownLegIds(db, ids),
          stalestFirst: (ids) => stalestFirst(db, ids),
        },
        // The feed brings the live view (importance included) while it is live.
        { knownLegs, importance: !eventsLive },
      );
      const { endedCallIds } = await storeSnapshot(db, node, snapshot, { startedAt: passStartedAt, eventsLive });
      const callIds = [...snapshot.calls.map((c) => c.id), ...endedCallIds];
      if (callIds.length) await this.#d.requestRecompute(callIds, `reconcile:${reason}`);
      const messages = await reconcileMessages(db, node, snapshot.calls, passStartedAt, this.#d.ourTexts);
      for (const callId of messages.enqueue) await enqueueCallMessageWrite(writer.queue, callId);

      const seconds = (performance.now() - started) / 1000;
      metrics.reconcileSeconds.observe({ node }, seconds);
      metrics.reconcileCalls.set({ node }, snapshot.calls.length);
      metrics.reconcileCallsEnded.inc({ node }, endedCallIds.length);
      metrics.reconcileReapplied.inc({ node }, messages.reapplied);
      log.info(
        {
          node,
          reason,
          calls: snapshot.calls.length,
          legs: snapshot.legs.length,
          legsRead: snapshot.legsRead,
          liveReads: snapshot.liveReads,
          callsEnded: endedCallIds.length,
          reapplied: messages.reapplied,
          placed: messages.placed,
          writesQueued: messages.enqueue.length,
          ms: Math.round(seconds * 1000),
        },
        'reconciliation pass',
      );
      return this.#count('ok');
    } catch (err) {
      if (err instanceof ReadsAbortedError) return this.#count('aborted');
      if (err instanceof CmsApiError && (err.isAuth || err.isTlsFailure)) {
        await writer.health.markUnhealthy(err);
        return this.#count('held');
      }
      this.#count('failed');
      // drizzle puts the whole statement in its message; Postgres' own answer (code, message) is its cause.
      const cause = (err as { cause?: unknown }).cause;
      log.warn({ node, reason, err: cause instanceof Error ? cause : err }, 'reconciliation pass failed: it is tried again');
      throw err;
    }
  }

  #count(outcome: PassOutcome): PassOutcome {
    this.#d.metrics.reconcilePasses.inc({ node: this.name, outcome });
    return outcome;
  }
}
