export { createDatabase, type Database, type DatabaseOptions, databaseCheck, pg } from './client.ts';
export { lockMeetingsOfCalls } from './meeting-locks.ts';
export { ensureDatabase, MIGRATIONS_FOLDER, runMigrations } from './migrate.ts';
export {
  dropExpiredPartitions,
  ensurePartitions,
  listMonthPartitions,
  MONTHLY_PARTITIONED_TABLES,
  type MonthPartition,
  type PartitionedTableName,
  retentionHorizon,
} from './partitions.ts';
export { type Recordset, recordset } from './recordset.ts';
export * from './schema.ts';
export {
  CALL_MESSAGE_STATUSES,
  type CallMessageStatus,
  CMS_NODE_MODES,
  CMS_WRITE_KINDS,
  CMS_WRITE_STATUSES,
  type CmsNodeMode,
  type CmsWriteKind,
  type CmsWriteStatus,
  OBSERVATION_SOURCES,
  type ObservationSource,
  OPERATOR_ACTION_KINDS,
  OPERATOR_ACTION_STATUSES,
  type OperatorActionKind,
  type OperatorActionStatus,
} from './states.ts';
