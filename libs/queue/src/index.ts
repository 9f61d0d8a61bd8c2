export { classifyRedisError, createRedisConnection, type Redis, RedisUnavailableError, redisReady } from './connection.ts';
export { type GroupCommitOptions, GroupCommitter } from './group-commit.ts';
export {
  addCdrBatches,
  CDR_BATCHES_QUEUE,
  type CdrBatchesJob,
  type CdrBatchesQueue,
  CMS_RECONCILE_QUEUE,
  CMS_WRITE_ATTEMPTS,
  CMS_WRITE_BACKOFF_TYPE,
  type CmsReconcileJob,
  type CmsReconcileQueue,
  type CmsWriteJob,
  type CmsWritesQueue,
  callMessageDeduplicationId,
  cappedExponentialDelay,
  cdrBatchBackoff,
  cmsWritesQueueName,
  createCdrBatchesQueue,
  createCmsReconcileQueue,
  createCmsWritesQueue,
  createPolicyRecomputeQueue,
  enqueueCallMessageWrite,
  POLICY_RECOMPUTE_QUEUE,
  type PolicyRecomputeJob,
  type PolicyRecomputeQueue,
  type QueueConnection,
  type ReceivedCdrBatch,
  requestRecompute,
  requestReconcile,
} from './job-graph.ts';
export { type ErrorEmitter, REDIS_ERROR_WINDOW_MS, type RedisErrorLogger, type WatchOptions, watchRedisErrors } from './redis-errors.ts';
export { type WatchableWorker, WorkerHealth, type WorkerHealthLogger, type WorkerHealthOptions, type WorkerStop } from './worker-health.ts';
