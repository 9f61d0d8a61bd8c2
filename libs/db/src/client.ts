import { sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as schema from './schema.ts';

export type Database = NodePgDatabase<typeof schema> & { $client: pg.Pool };

export interface DatabaseOptions {
  /** Pool size; each group commit of the policy worker holds one connection. */
  max?: number;
  applicationName?: string;
  /**
   * Told when a connection to Postgres breaks (server restart or crash, network cut), once per connection,
   * whether it sat idle in the pool or was checked out by a query or transaction. The query in flight fails on
   * its own (its caller retries); the pool opens a new connection on next use.
   */
  onConnectionLost?: (err: Error) => void;
}

export function createDatabase(url: string, options: DatabaseOptions = {}): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'cms-cdr',
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    // Every statement we run is a short keyed one. JIT compilation (on by default above a plan cost of 100,000) spent
    // 200-500 ms compiling such statements whenever the planner over-estimated them, as it does without statistics
    // (a partition nobody has analysed yet): measured by bench/scale.ts on 10 million records. Parallel workers
    // likewise: without statistics the planner gathered one-row lookups from 2 workers, 10-20 ms of worker start-up
    // per statement (a call's detail 56 ms instead of 5; bench/scale.ts).
    options: '-c jit=off -c max_parallel_workers_per_gather=0',
  });
  const lost = options.onConnectionLost ?? (() => {});
  // A pg client whose connection breaks emits 'error', and an 'error' event without a listener kills the process.
  // The pool listens only while a client sits idle; a client checked out (a transaction in progress when
  // Postgres crashes) has no listener. So every client gets one for its whole life, from the moment it connects.
  // A broken client is not queryable any more and the pool drops it when it is released.
  pool.on('connect', (client) => {
    client.on('error', lost);
  });
  // The pool re-emits an idle client's error after removing it; the client's own listener above reported it.
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
