import { sql } from 'drizzle-orm';
import type { Database } from './client.ts';

/**
 * The growing tables, range-partitioned by UTC month on their time column (migration 0008): partitions are named
 * `<table>_pYYYYMM`; `<table>_default` catches rows of a month nobody created (a CMS clock far off), and
 * ensurePartitions moves them into their month's partition once that month is created.
 */
export const MONTHLY_PARTITIONED_TABLES = [
  { table: 'cdr_records', column: 'time' },
  { table: 'meeting_level_changes', column: 'at' },
  { table: 'cms_writes', column: 'at' },
] as const;

export type PartitionedTableName = (typeof MONTHLY_PARTITIONED_TABLES)[number]['table'];

export interface MonthPartition {
  table: PartitionedTableName;
  name: string;
  /** Inclusive lower bound (UTC month start). */
  from: Date;
  /** Exclusive upper bound (next UTC month start). */
  to: Date;
}

const DAY_MS = 86_400_000;
/** A DROP waits at most this long for the table lock (a long API query); the next maintenance pass tries again. */
const LOCK_TIMEOUT = '5s';

function monthStart(at: Date, plusMonths = 0): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + plusMonths, 1));
}

/** The time before which rows are expired. */
export function retentionHorizon(now: Date, retentionDays: number): Date {
  return new Date(now.getTime() - retentionDays * DAY_MS);
}

/** The month partitions of `table` (the default partition excluded), oldest first. */
export async function listMonthPartitions(db: Database, table: PartitionedTableName): Promise<MonthPartition[]> {
  const { rows } = await db.execute<{ name: string }>(
    sql`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass(${table}) AND c.relname ~ ${`^${table}_p[0-9]{6}$`} ORDER BY c.relname`,
  );
  return rows.map(({ name }) => {
    const digits = name.slice(-6);
    const from = new Date(Date.UTC(Number(digits.slice(0, 4)), Number(digits.slice(4)) - 1, 1));
    return { table, name, from, to: monthStart(from, 1) };
  });
}

/**
 * Creates, for every partitioned table, the partitions of this month and the next `monthsAhead`, and of any earlier
 * month within retention whose rows reached the default partition (moving them in). Returns the partitions created.
 * Safe to run from every replica at once (cms_month_partition serialises per table).
 */
export async function ensurePartitions(
  db: Database,
  options: { now?: Date; monthsAhead?: number; retentionDays: number },
): Promise<{ table: PartitionedTableName; name: string }[]> {
  const now = options.now ?? new Date();
  const horizon = retentionHorizon(now, options.retentionDays);
  const created: { table: PartitionedTableName; name: string }[] = [];
  for (const { table, column } of MONTHLY_PARTITIONED_TABLES) {
    const months = new Set<number>();
    const monthsAhead = options.monthsAhead ?? 2;
    for (let ahead = 0; ahead <= monthsAhead; ahead++) months.add(monthStart(now, ahead).getTime());
    // Stray rows further ahead (a clock years off) stay in the default partition until their month is near.
    const { rows: stray } = await db.execute<{ month: string }>(
      sql`SELECT DISTINCT date_trunc('month', ${sql.identifier(column)}, 'UTC') AS month FROM ${sql.identifier(`${table}_default`)}
          WHERE ${sql.identifier(column)} >= ${horizon.toISOString()} AND ${sql.identifier(column)} < ${monthStart(now, monthsAhead + 1).toISOString()}`,
    );
    for (const { month } of stray) months.add(new Date(month).getTime());
    for (const month of [...months].sort((a, b) => a - b)) {
      const { rows } = await db.execute<{ name: string | null }>(
        sql`SELECT cms_month_partition(${table}, ${column}, ${new Date(month).toISOString()}::timestamptz) AS name`,
      );
      const name = rows[0]?.name;
      if (name) created.push({ table, name });
    }
  }
  return created;
}

/**
 * Retention: drops every month partition lying wholly before now − retentionDays (a whole table each: no row-by-row
 * DELETE, no bloat, no vacuum debt), and deletes the default partition's expired stray rows (only rows of months
 * nobody created, so few). Returns the partitions dropped and the stray rows deleted.
 */
export async function dropExpiredPartitions(
  db: Database,
  options: { now?: Date; retentionDays: number },
): Promise<{ dropped: MonthPartition[]; strayRowsDeleted: number }> {
  const horizon = retentionHorizon(options.now ?? new Date(), options.retentionDays);
  const dropped: MonthPartition[] = [];
  let strayRowsDeleted = 0;
  for (const { table, column } of MONTHLY_PARTITIONED_TABLES) {
    for (const partition of await listMonthPartitions(db, table)) {
      if (partition.to.getTime() > horizon.getTime()) continue;
      await db.transaction(async (tx) => {
        await tx.execute(sql.raw(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`));
        await tx.execute(sql`DROP TABLE IF EXISTS ${sql.identifier(partition.name)}`);
      });
      dropped.push(partition);
    }
    const deleted = await db.execute(
      sql`DELETE FROM ${sql.identifier(`${table}_default`)} WHERE ${sql.identifier(column)} < ${horizon.toISOString()}`,
    );
    strayRowsDeleted += deleted.rowCount ?? 0;
  }
  return { dropped, strayRowsDeleted };
}
