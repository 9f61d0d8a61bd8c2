export { createRedisConnection, type Redis } from './connection.ts';
export { type GroupCommitOptions, GroupCommitter } from './group-commit.ts';
export { CDR_BATCHES_QUEUE, type CdrBatchesJob, type CdrBatchJob, type CmsWriteJob, cmsWritesQueueName } from './names.ts';
export { CDR_BACKOFF_CAP_MS, CDR_BATCH_JOB_OPTIONS, cappedBackoff } from './options.ts';
