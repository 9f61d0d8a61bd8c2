export { createDatabase, type Database, type DatabaseOptions, databaseCheck, pg } from './client.ts';
export { ensureDatabase, MIGRATIONS_FOLDER, runMigrations } from './migrate.ts';
export { type Recordset, recordset } from './recordset.ts';
export * from './schema.ts';
