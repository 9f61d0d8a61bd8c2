import { getTableColumns, getTableName, type SQL, sql } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';

/**
 * Bulk writes with ONE parameter: rows travel as a JSON array and Postgres expands them with
 * jsonb_to_recordset. Building a multi-row VALUES list parameter by parameter costs the worker more CPU
 * than the database spends on the insert; a JSON string costs almost nothing and is still fully parameterised.
 */
export interface Recordset<Row> {
  /** `"col_a", "col_b", ...` */
  columns: SQL;
  /** `jsonb_to_recordset($1::jsonb) AS x("col_a" text, ...)` for the given rows. */
  from(rows: readonly Row[]): SQL;
  table: SQL;
}

export function recordset<T extends PgTable, K extends keyof T['$inferInsert'] & string>(
  table: T,
  keys: readonly K[],
): Recordset<Pick<T['$inferInsert'], K>> {
  const all = getTableColumns(table) as Record<string, PgColumn>;
  const cols = keys.map((key) => {
    const column = all[key];
    if (!column) throw new Error(`${getTableName(table)} has no column ${key}`);
    return { key, name: column.name, type: column.getSQLType() };
  });
  const columns = sql.raw(cols.map((c) => `"${c.name}"`).join(', '));
  const definition = sql.raw(cols.map((c) => `"${c.name}" ${c.type}`).join(', '));
  return {
    columns,
    table: sql.raw(`"${getTableName(table)}"`),
    from(rows) {
      const json = JSON.stringify(
        rows.map((row) => {
          const out: Record<string, unknown> = {};
          for (const c of cols) out[c.name] = (row as Record<string, unknown>)[c.key] ?? null;
          return out;
        }),
      );
      return sql`jsonb_to_recordset(${json}::jsonb) AS x(${definition})`;
    },
  };
}
