export { classifyRedisError, createRedisConnection, type Redis, RedisUnavailableError, redisReady } from './connection.ts';
export { type GroupCommitOptions, GroupCommitter } from './group-commit.ts';
export {
  CDR_BATCHES_QUEUE,
  type CdrBatchesJob,
  type CdrBatchJob,
  CMS_RECONCILE_QUEUE,
  type CmsReconcileJob,
  type CmsWriteJob,
  cmsWritesQueueName,
  POLICY_RECOMPUTE_QUEUE,
  type PolicyRecomputeJob,
} from './names.ts';
export { CDR_BATCH_JOB_OPTIONS, cappedBackoff } from './options.ts';
export { type ErrorEmitter, REDIS_ERROR_WINDOW_MS, type RedisErrorLogger, type WatchOptions, watchRedisErrors } from './redis-errors.ts';
