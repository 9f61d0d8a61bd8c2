import { type Database, dropExpiredPartitions, ensurePartitions } from '@cms/db';
import { Counter, type Logger, type Registry } from '@cms/observability';

/** Hourly: a month's partition exists weeks before its first row, and an expired one goes within the hour. */
const INTERVAL_MS = 3_600_000;

export interface PartitionMaintenance {
  /** One pass: partitions created ahead, expired ones dropped. Resolves when done (errors are logged, not thrown). */
  runOnce(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Keeps the monthly partitions of the growing tables (cdr_records, meeting_level_changes, cms_writes): creates
 * this month's and the next two ahead of time, and drops whole partitions past `storage.retentionDays`, each with a
 * log line and a count in storage_partitions_dropped_total. Every replica runs it; the SQL side serialises them.
 */
export function startPartitionMaintenance(options: {
  db: Database;
  retentionDays: number;
  log: Logger;
  registry: Registry;
  intervalMs?: number;
}): PartitionMaintenance {
  const { db, retentionDays, log, registry } = options;
  const created = new Counter({
    name: 'storage_partitions_created_total',
    help: 'Monthly partitions created ahead of time (or for rows that reached the default partition), by table',
    labelNames: ['table'],
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'storage_partitions_dropped_total',
    help: 'Monthly partitions dropped because all of their rows were older than storage.retentionDays, by table',
    labelNames: ['table'],
    registers: [registry],
  });
  const failures = new Counter({
    name: 'storage_partition_maintenance_failures_total',
    help: 'Partition maintenance passes that failed (retried at the next pass)',
    registers: [registry],
  });

  let running: Promise<void> | undefined;
  const pass = async () => {
    try {
      for (const partition of await ensurePartitions(db, { retentionDays })) {
        created.inc({ table: partition.table });
        log.info({ table: partition.table, partition: partition.name }, 'partition created');
      }
      const expired = await dropExpiredPartitions(db, { retentionDays });
      for (const partition of expired.dropped) {
        dropped.inc({ table: partition.table });
        log.info(
          {
            table: partition.table,
            partition: partition.name,
            from: partition.from.toISOString(),
            to: partition.to.toISOString(),
            retentionDays,
          },
          'expired partition dropped',
        );
      }
      if (expired.strayRowsDeleted)
        log.info({ rows: expired.strayRowsDeleted, retentionDays }, 'expired rows of the default partitions deleted');
    } catch (err) {
      failures.inc();
      log.error({ err }, 'partition maintenance failed: retrying at the next pass');
    }
  };
  const runOnce = () => {
    running ??= pass().finally(() => {
      running = undefined;
    });
    return running;
  };
  void runOnce();
  const timer = setInterval(() => void runOnce(), options.intervalMs ?? INTERVAL_MS);
  timer.unref();
  return {
    runOnce,
    async close() {
      clearInterval(timer);
      await running;
    },
  };
}
