import type { Config } from '@cms/config';
import { createDatabase, type Database, databaseCheck } from '@cms/db';
import { installHealthRoutes, installProblemHandlers, pingCheck, quietRequestLogging } from '@cms/http';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '@cms/observability';
import { compilePolicy } from '@cms/policy';
import { type CdrBatchesJob, createRedisConnection, WorkerHealth } from '@cms/queue';
import type { Worker } from 'bullmq';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { createWorkerMetrics } from './metrics.ts';
import { startPartitionMaintenance } from './partition-maintenance.ts';
import type { PolicyOutcome } from './security/apply-policy.ts';
import { createWriteEnqueuer } from './security/enqueue-writes.ts';
import { startRecomputeWorker } from './security/recompute-worker.ts';
import { createReconcileRequester } from './security/reconcile-requests.ts';
import { createOutageGuard } from './storage/outage.ts';
import { createBatchWorker } from './worker.ts';

export interface PolicyWorkerDeps {
  config: Config;
  db?: Database;
  log?: Logger;
  registry?: Registry;
  /** Exit (code 1) when a BullMQ worker stops for good, so the supervisor restarts the process (main.ts sets it). */
  exitWhenWorkerStops?: boolean;
}

export interface PolicyWorkerService {
  app: FastifyInstance;
  worker: Worker<CdrBatchesJob>;
  db: Database;
  /** Stops taking batches, finishes the ones in hand (or returns them to the queue), then closes. */
  close(): Promise<void>;
}

/**
 * Builds the policy worker: CDR batches stored with their security decisions (worker.ts), recomputes on request
 * (security/recompute-worker.ts), health and metrics over HTTP. Tests start it in-process; main.ts wires it to a
 * port and signals.
 */
export async function buildPolicyWorker(deps: PolicyWorkerDeps): Promise<PolicyWorkerService> {
  const { config } = deps;
  const log = deps.log ?? createLogger('policy-worker', config.log.level);
  const registry = deps.registry ?? createMetricsRegistry('policy-worker');
  const metrics = createWorkerMetrics(
    registry,
    config.cms.nodes.map((node) => node.name),
  );
  const ownsDb = !deps.db;
  const db =
    deps.db ??
    createDatabase(config.database.url, {
      max: 4,
      applicationName: 'policy-worker',
      // The transaction that was using the connection fails; the outage guard holds its batches until Postgres is back.
      onConnectionLost: (err) => log.warn({ err }, 'postgres connection lost: reconnecting on next use'),
    });

  // Compiled once: a malformed domain or network entry stops start-up with a message naming it.
  const compiled = compilePolicy(config.policy);
  for (const warning of compiled.warnings) log.warn({ warning }, 'policy configuration');
  const managedNodes = new Set(config.cms.nodes.map((n) => n.name));
  const producer = createRedisConnection(config.redis, 'producer');
  producer.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const enqueueWrites = createWriteEnqueuer(producer, config.queue.prefix, log, metrics);
  const requestReconcile = createReconcileRequester(producer, config.queue.prefix, managedNodes, log);
  const logDecisions = (outcome: PolicyOutcome) => {
    if (outcome.cost) {
      const legs = outcome.cost.instancesReread ? 'all' : 'changed';
      metrics.decisionSeconds.observe({ legs }, outcome.cost.seconds);
      metrics.decisionLegs.observe({ legs }, outcome.cost.legsRead);
    }
    for (const change of outcome.levelChanges) {
      metrics.levelChanges.inc({ to: change.newLevel === null ? 'none' : String(change.newLevel) });
      log.info(
        {
          meetingKey: change.meetingKey,
          oldLevel: change.oldLevel,
          newLevel: change.newLevel,
          causeLegId: change.causeLegId,
          reason: change.reason,
        },
        'meeting security level changed',
      );
    }
  };

  const outage = createOutageGuard(log);
  const workers = new WorkerHealth({ log, exitOnStop: deps.exitWhenWorkerStops });
  const connection = createRedisConnection(config.redis, 'worker');
  connection.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const worker = createBatchWorker({
    config,
    db,
    connection,
    log,
    metrics,
    security: { compiled, managedNodes },
    outage,
    enqueueWrites,
    requestReconcile,
    logDecisions,
  });

  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: quietRequestLogging() });
  installProblemHandlers(app);
  installHealthRoutes(app, {
    registry,
    checks: [pingCheck('redis', connection), databaseCheck(db), workers.check],
  });

  const recomputeConnection = createRedisConnection(config.redis, 'worker');
  recomputeConnection.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const recompute = startRecomputeWorker({
    connection: recomputeConnection,
    prefix: config.queue.prefix,
    db,
    compiled,
    managedNodes,
    log,
    whilePostgresUnavailable: outage.run,
    onDecided: async (outcome) => {
      logDecisions(outcome);
      await enqueueWrites(outcome.writes);
    },
  });

  const partitions = startPartitionMaintenance({ db, retentionDays: config.storage.retentionDays, log, registry });

  void worker.run().catch((err: Error) => log.error({ err }, 'worker stopped'));
  workers.watch(worker);
  workers.watch(recompute);

  return {
    app,
    worker,
    db,
    async close() {
      workers.shuttingDown();
      // Batches held through a Postgres outage fail now (the queue keeps them) instead of holding up the close.
      outage.stop();
      await app.close();
      await Promise.all([worker.close(), recompute.close(), partitions.close()]);
      connection.disconnect();
      recomputeConnection.disconnect();
      await Promise.all([enqueueWrites.close(), requestReconcile.close()]);
      producer.disconnect();
      if (ownsDb) await db.$client.end();
    },
  };
}
