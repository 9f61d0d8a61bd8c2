import type { Config } from '@cms/config';
import { createDatabase, type Database, databaseCheck } from '@cms/db';
import { installHealthRoutes, installProblemHandlers, pingCheck, quietRequestLogging } from '@cms/http';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '@cms/observability';
import { compilePolicy } from '@cms/policy';
import { CDR_BATCHES_QUEUE, type CdrBatchesJob, type CdrBatchJob, cappedBackoff, createRedisConnection, GroupCommitter } from '@cms/queue';
import { Worker } from 'bullmq';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { createWorkerMetrics } from './metrics.ts';
import type { PolicyOutcome } from './security/apply-policy.ts';
import { createWriteEnqueuer } from './security/enqueue-writes.ts';
import { startRecomputeWorker } from './security/recompute-worker.ts';
import { createReconcileRequester } from './security/reconcile-requests.ts';
import { createOutageGuard } from './storage/outage.ts';
import { classifyFailure, describeFailure } from './storage/pg-failure.ts';
import { storeRecordByRecord } from './storage/refused-records.ts';
import { type StoreResult, storeBatches } from './storage/store-batches.ts';

export interface PolicyWorkerDeps {
  config: Config;
  db?: Database;
  log?: Logger;
  registry?: Registry;
}

export interface PolicyWorkerService {
  app: FastifyInstance;
  worker: Worker<CdrBatchesJob>;
  db: Database;
  /** Stops taking batches, finishes the ones in hand (or returns them to the queue), then closes. */
  close(): Promise<void>;
}

export async function buildPolicyWorker(deps: PolicyWorkerDeps): Promise<PolicyWorkerService> {
  const { config } = deps;
  const log = deps.log ?? createLogger('policy-worker', config.log.level);
  const registry = deps.registry ?? createMetricsRegistry('policy-worker');
  const metrics = createWorkerMetrics(registry);
  const ownsDb = !deps.db;
  const db =
    deps.db ??
    createDatabase(config.database.url, {
      max: 4,
      applicationName: 'policy-worker',
      // The transaction that was using the connection fails; the outage guard holds its batches until Postgres is back.
      onConnectionLost: (err) => log.warn({ err: err.message }, 'postgres connection lost: reconnecting on next use'),
    });

  // Compiled once: a malformed domain or network entry stops start-up with a message naming it.
  const compiled = compilePolicy(config.policy);
  for (const warning of compiled.warnings) log.warn({ warning }, 'policy configuration');
  const managedNodes = new Set(config.cms.nodes.map((n) => n.name));
  const producer = createRedisConnection(config.redis.url, 'producer');
  producer.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
  const enqueueWrites = createWriteEnqueuer(producer, config.queue.prefix, log, metrics);
  const requestReconcile = createReconcileRequester(producer, config.queue.prefix, managedNodes, log);
  const logDecisions = (outcome: PolicyOutcome) => {
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
  const security = { compiled, managedNodes };
  const store = async (jobs: CdrBatchJob[]): Promise<StoreResult> => {
    try {
      return await outage.run(() => storeBatches(db, jobs, security));
    } catch (err) {
      // A value Postgres refuses would fail this batch on every retry, and its valid records with it. In a group,
      // the committer first retries each batch alone (isolateFailures); alone, it is stored record by record.
      if (jobs.length !== 1 || classifyFailure(err) !== 'refused') throw err;
      return storeRecordByRecord(db, jobs[0]!, security, outage.run);
    }
  };

  const committer = new GroupCommitter<CdrBatchJob, StoreResult>({
    commit: async (jobs) => {
      const result = await store(jobs);
      // After the commit: the actuator must never read a desired state older than the job that points at it.
      await enqueueWrites(result.policy.writes);
      for (const gap of result.gaps) await requestReconcile(gap.node, 'cdrGap');
      for (const session of result.newSessions) await requestReconcile(session.node, 'bridgeRestart');
      return result;
    },
    size: (job) => Math.max(1, job.batch.records.length),
    maxGroupSize: config.policyWorker.maxRecordsPerCommit,
    isolateFailures: true,
    // One commit at a time per worker: measured, a second one in flight mostly waits on the first one's leg and
    // meeting locks (consecutive records of a call land in consecutive groups) and costs Postgres more CPU.
    // Replicas still commit concurrently; the locks keep their decisions consistent.
    maxInFlight: 1,
    onCommitted: (jobs, result, ms) => {
      metrics.records.inc(result.inserted);
      metrics.duplicates.inc(result.duplicates);
      metrics.quarantined.inc(result.quarantined);
      metrics.commitSeconds.observe(ms / 1000);
      metrics.groupBatches.observe(jobs.length);
      logDecisions(result.policy);
      for (const refused of result.refused ?? [])
        log.warn(refused, 'record refused by Postgres: quarantined, the rest of its batch stored');
      for (const gap of result.gaps) {
        metrics.gaps.inc({ node: gap.node ?? 'unknown' }, gap.missing);
        log.warn(gap, 'CMS discarded CDRs before this record (numPreceedingRecordsMissing): they are lost');
      }
      log.debug({ batches: jobs.length, inserted: result.inserted, duplicates: result.duplicates, ms: Math.round(ms) }, 'group committed');
    },
  });

  const connection = createRedisConnection(config.redis.url, 'worker');
  connection.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
  // A job holds the batches of POSTs that arrived together; each batch joins the next group commit.
  const worker = new Worker<CdrBatchesJob>(
    CDR_BATCHES_QUEUE,
    async (job) => {
      await Promise.all(job.data.batches.map((batch) => committer.submit(batch)));
    },
    {
      connection,
      prefix: config.queue.prefix,
      concurrency: config.policyWorker.concurrency,
      lockDuration: config.policyWorker.lockDurationMs,
      // Look for batches of crashed workers as often as a lock can expire.
      stalledInterval: config.policyWorker.lockDurationMs,
      // A batch whose worker died (kill -9, OOM) is taken over; crashes are not the batch's fault, so allow several.
      maxStalledCount: 10,
      settings: { backoffStrategy: cappedBackoff },
      autorun: false,
    },
  );
  worker.on('failed', (job, err) => {
    metrics.batchFailures.inc();
    log.warn(
      { jobId: job?.id, attempt: job?.attemptsMade, failure: classifyFailure(err), err: describeFailure(err) },
      'batch not stored: will retry',
    );
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'worker error'));

  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: quietRequestLogging() });
  installProblemHandlers(app);
  installHealthRoutes(app, {
    registry,
    checks: [pingCheck('redis', connection), databaseCheck(db)],
  });

  const recomputeConnection = createRedisConnection(config.redis.url, 'worker');
  recomputeConnection.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
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

  void worker.run().catch((err: Error) => log.error({ err: err.message }, 'worker stopped'));

  return {
    app,
    worker,
    db,
    async close() {
      // Batches held through a Postgres outage fail now (the queue keeps them) instead of holding up the close.
      outage.stop();
      await app.close();
      await Promise.all([worker.close(), recompute.close()]);
      connection.disconnect();
      recomputeConnection.disconnect();
      await Promise.all([enqueueWrites.close(), requestReconcile.close()]);
      producer.disconnect();
      if (ownsDb) await db.$client.end();
    },
  };
}
