import { sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as schema from './schema.ts';

export type Database = NodePgDatabase<typeof schema> & { $client: pg.Pool };

export interface DatabaseOptions {
  /** Pool size; each group commit of the policy worker holds one connection. */
  max?: number;
  applicationName?: string;
}

export function createDatabase(url: string, options: DatabaseOptions = {}): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'cms-cdr',
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection (Postgres restart) must not crash the process: the pool replaces it.
  pool.on('error', () => {});
  return drizzle(pool, { schema }) as Database;
}

export { pg };

/** A /readyz check (libs/http ReadinessCheck shape): Postgres answers a query. */
export function databaseCheck(db: Database): { name: string; check: () => Promise<void> } {
  return {
    name: 'postgres',
    check: async () => {
      await db.execute(sql`SELECT 1`);
    },
  };
}
