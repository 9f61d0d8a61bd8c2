import type { Config } from '@cms/config';
import { createDatabase, type Database, databaseCheck } from '@cms/db';
import { installHealthRoutes, installProblemHandlers, pingCheck, quietRequestLogging, type ReadinessCheck } from '@cms/http';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '@cms/observability';
import {
  createPolicyRecomputeQueue,
  createRedisConnection,
  POLICY_RECOMPUTE_QUEUE,
  requestRecompute,
  WorkerHealth,
  watchRedisErrors,
} from '@cms/queue';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { EventsFeed } from './events/events-feed.ts';
import type { NodeFeedLimits } from './events/node-feed.ts';
import { createActuatorMetrics } from './metrics.ts';
import { NodeWriter } from './node-writer.ts';
import { NodeReconciler, type RecomputeRequest } from './reconcile/node-reconciler.ts';
import { ReconcileWorker } from './reconcile/reconcile-worker.ts';
import { Sweeper } from './reconcile/sweeper.ts';
import { type ActuatorTuning, resolveTuning } from './tuning.ts';
import { levelsOfMessageTexts } from './write-call-message.ts';

export interface ActuatorDeps {
  config: Config;
  db?: Database;
  log?: Logger;
  registry?: Registry;
  /** Delays and limits that are not operator configuration (tests shorten them). */
  tuning?: Partial<ActuatorTuning>;
  /** Exit (code 1) when a BullMQ worker stops for good, so the supervisor restarts the process (main.ts sets it). */
  exitWhenWorkerStops?: boolean;
  /** Events feed limits and delays (tests shorten the back-off and the token refresh). */
  eventsLimits?: Partial<NodeFeedLimits>;
}

export interface ActuatorService {
  app: FastifyInstance;
  /** One writer per configured CMS node, by node name. */
  writers: ReadonlyMap<string, NodeWriter>;
  /** One reconciler per configured CMS node, by node name (paced reads of its active calls). */
  reconcilers: ReadonlyMap<string, NodeReconciler>;
  /** Takes reconciliation requests; `request(node, reason)` queues a pass. */
  reconciliation: ReconcileWorker;
  /** The CMS events feed of every node, and each node's mode (events, polling, unreachable). */
  events: EventsFeed;
  /** Stops taking jobs; jobs in hand finish or return to their queue. */
  close(): Promise<void>;
}

/**
 * The process that makes CMS match the desired state: one BullMQ worker per configured node, paced under the
 * node's write ceiling, with coalescing, retries, 503 back-off and credential holds (see node-writer.ts);
 * reconciliation of each node's active calls at start-up, periodically and on request (reconcile/); and a sweep
 * for desired state that never got a write job or whose node is unknown.
 */
export async function buildActuator(deps: ActuatorDeps): Promise<ActuatorService> {
  const { config } = deps;
  const log = deps.log ?? createLogger('cms-actuator', config.log.level);
  const registry = deps.registry ?? createMetricsRegistry('cms-actuator');
  // Operator settings first; tests' tuning overrides them.
  const tuning = resolveTuning({
    callMessageMinIntervalMs: config.actuator.messageMinIntervalMs,
    interactiveReservedWrites: config.actuator.interactiveReservedWrites,
    lockDurationMs: config.actuator.lockDurationMs,
    stalledIntervalMs: config.actuator.lockDurationMs,
    ...deps.tuning,
  });
  const metrics = createActuatorMetrics(registry, config.cms.nodes);
  const ownsDb = !deps.db;
  const db = deps.db ?? createDatabase(config.database.url, { max: 4, applicationName: 'cms-actuator' });
  const redis = watchRedisErrors(log, createRedisConnection(config.redis, 'worker'), 'redis connection');
  const workers = new WorkerHealth({ log, exitOnStop: deps.exitWhenWorkerStops });

  const writers = new Map<string, NodeWriter>();
  const messageLevels = levelsOfMessageTexts(config.policy.messages);
  for (const node of config.cms.nodes) {
    const writer = new NodeWriter({ node, db, redis, prefix: config.queue.prefix, log, metrics, tuning, messageLevels, peers: writers });
    writer.health.onContact((contact) => metrics.nodeReachable.set({ node: node.name }, contact.reachable ? 1 : 0));
    writers.set(node.name, writer);
  }

  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: quietRequestLogging() });
  installProblemHandlers(app);
  const checks: ReadinessCheck[] = [
    pingCheck('redis', redis),
    databaseCheck(db),
    workers.check,
    // A node that refuses our credentials (writes held) or cannot be reached at all fails readiness with the reason:
    // this replica cannot do its work for that node, and an operator should see why.
    ...[...writers.values()].map((writer) => ({ name: `cms:${writer.name}`, check: () => writer.health.assertReady() })),
  ];
  installHealthRoutes(app, { registry, checks, details: () => ({ cmsNodes: events.view() }) });

  const recomputeQueue = watchRedisErrors(
    log,
    createPolicyRecomputeQueue({ connection: redis, prefix: config.queue.prefix }),
    `queue ${POLICY_RECOMPUTE_QUEUE}`,
  );
  // The actuator never decides a level itself: calls whose facts reconciliation or placement changed go to the
  // policy worker, so both paths (CDRs and the API) always agree.
  const recompute: RecomputeRequest = (callIds, reason, participants) => requestRecompute(recomputeQueue, callIds, reason, participants);
  const ourTexts = new Set(Object.values(config.policy.messages).map((m) => m.text));
  const events = new EventsFeed({
    nodes: config.cms.nodes,
    writers,
    db,
    log,
    metrics,
    enabled: config.cms.events.enabled,
    limits: {
      maxConnections: 5,
      maxSubscriptions: 100,
      reconnectBaseMs: 500,
      reconnectMaxMs: config.cms.events.reconnectMaxSeconds * 1000,
      handshakeTimeoutMs: tuning.connectTimeoutMs,
      tokenRefreshMs: config.cms.events.tokenRefreshSeconds * 1000,
      ...deps.eventsLimits,
    },
    connectTimeoutMs: tuning.connectTimeoutMs,
    requestTimeoutMs: tuning.requestTimeoutMs,
    requestRecompute: recompute,
    requestReconcile: (node, reason) => reconciliation.request(node, reason),
    // One replica at a time follows each node's feed (CMS's connection limit, one store of each roster change).
    lease: { redis, prefix: config.queue.prefix },
  });
  const reconcilers = new Map<string, NodeReconciler>();
  for (const node of config.cms.nodes) {
    const writer = writers.get(node.name) as NodeWriter;
    reconcilers.set(
      node.name,
      new NodeReconciler({
        node,
        writer,
        db,
        redis,
        prefix: config.queue.prefix,
        log,
        metrics,
        tuning,
        readsPerSecond: config.actuator.readsPerSecond,
        requestRecompute: recompute,
        ourTexts,
        eventsLive: () => events.liveAnywhere(node.name),
      }),
    );
  }
  const reconciliation = new ReconcileWorker({
    reconcilers,
    redis,
    prefix: config.queue.prefix,
    log,
    metrics,
    intervalSeconds: config.actuator.reconcileIntervalSeconds,
  });
  const sweeper = new Sweeper({
    pending: { db, writers, log, metrics, minAgeMs: tuning.sweepMinAgeMs, batchSize: tuning.sweepBatchSize },
    placement: {
      db,
      redis,
      prefix: config.queue.prefix,
      writers,
      reconcilers,
      log,
      metrics,
      requestRecompute: recompute,
      batchSize: tuning.sweepBatchSize,
    },
    log,
    metrics,
    intervalMs: tuning.sweepIntervalMs,
  });

  // Every queue and worker gets an `error` listener before it starts: without one BullMQ prints each Redis error as a
  // raw stack trace on stderr. (The writers' and the reconciliation's own listeners add their context at warn/debug.)
  for (const writer of writers.values()) {
    watchRedisErrors(log, writer.queue, `queue ${writer.queue.name}`, { fields: { node: writer.name } });
    watchRedisErrors(log, writer.worker, `worker ${writer.worker.name}`, { fields: { node: writer.name } });
  }
  watchRedisErrors(log, reconciliation.queue, `queue ${reconciliation.queue.name}`);
  watchRedisErrors(log, reconciliation.worker, `worker ${reconciliation.worker.name}`);

  for (const writer of writers.values()) writer.start();
  for (const writer of writers.values()) workers.watch(writer.worker);
  if (writers.size === 0) log.warn('no CMS nodes configured (cms.nodes): nothing will be written to CMS');
  reconciliation.start();
  workers.watch(reconciliation.worker);
  events.start();
  sweeper.start();

  return {
    app,
    writers,
    reconcilers,
    reconciliation,
    events,
    async close() {
      workers.shuttingDown();
      await app.close();
      await events.close();
      // Passes and placement lookups stop between two reads rather than holding the shutdown up.
      for (const reconciler of reconcilers.values()) reconciler.stop();
      await reconciliation.close();
      await sweeper.close();
      await Promise.all([...reconcilers.values()].map((reconciler) => reconciler.close()));
      await Promise.all([...writers.values()].map((writer) => writer.close()));
      await recomputeQueue.close();
      redis.disconnect();
      if (ownsDb) await db.$client.end();
    },
  };
}
