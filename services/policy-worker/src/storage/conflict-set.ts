import { getTableColumns, type SQL, sql } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';

/** An ON CONFLICT ... DO UPDATE SET list as raw SQL text, built once per table (column names only, no values). */
export function conflictSet(table: PgTable, skip: readonly string[], expression: (column: string) => string): SQL {
  const parts: string[] = [];
  for (const [name, column] of Object.entries(getTableColumns(table))) {
    if (skip.includes(name)) continue;
    parts.push(`"${column.name}" = ${expression(column.name)}`);
  }
  return sql.raw(parts.join(', '));
}
