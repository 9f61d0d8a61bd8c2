import { type Column, type SQL, sql, type Table } from 'drizzle-orm';

/** "table"."column": drizzle leaves columns unqualified in single-table selects, which a correlated subquery cannot afford. */
export function qualified(table: Table, column: Column): SQL {
  return sql`${table}.${sql.identifier(column.name)}`;
}
