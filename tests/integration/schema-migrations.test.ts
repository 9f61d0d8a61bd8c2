/**
 * The drizzle schema (libs/db/src/schema.ts), which every query is typed and built from, describes the database the
 * SQL migrations build: the migrations are partly written by hand (partitioned tables, triggers), so nothing else
 * keeps the two in step. And drizzle-kit's last snapshot is the schema, so `npx drizzle-kit generate` after a schema
 * change writes only that change (its snapshots once stopped at 0005, and it would have re-created 0006-0012).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as schema from '@cms/db';
import { sql } from 'drizzle-orm';
import { getTableConfig, PgTable } from 'drizzle-orm/pg-core';
import { testDatabase } from '../helpers/infra.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { db } = await testDatabase();

const tables = (Object.values(schema) as unknown[])
  .filter((value): value is PgTable => value instanceof PgTable)
  .map((table) => getTableConfig(table));

test('every table of the drizzle schema exists with the same columns, types and nullability', async () => {
  assert.ok(tables.length >= 15, `the schema's tables found (${tables.length})`);
  for (const table of tables) {
    const { rows } = await db.execute<{ column_name: string; is_nullable: string; udt_name: string }>(
      sql`SELECT column_name, is_nullable, udt_name FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name = ${table.name} ORDER BY column_name`,
    );
    assert.deepEqual(
      rows.map((r) => r.column_name),
      table.columns.map((c) => c.name).sort(),
      `columns of ${table.name}`,
    );
    for (const column of table.columns) {
      const row = rows.find((r) => r.column_name === column.name);
      assert.equal(row?.is_nullable === 'NO', column.notNull, `${table.name}.${column.name} NOT NULL`);
      // drizzle's SQL type (bigserial, timestamp with time zone...) against Postgres's (int8, timestamptz...).
      const expected = UDT[column.getSQLType().replace(/\(.*\)/, '')] ?? column.getSQLType();
      assert.equal(row?.udt_name, expected, `${table.name}.${column.name} type`);
    }
  }
});

/** Postgres's udt_name for drizzle's SQL type names used in the schema. */
const UDT: Record<string, string> = {
  bigint: 'int8',
  bigserial: 'int8',
  integer: 'int4',
  serial: 'int4',
  smallint: 'int2',
  text: 'text',
  boolean: 'bool',
  jsonb: 'jsonb',
  'timestamp with time zone': 'timestamptz',
};

test('every index the drizzle schema names exists on its table, with its uniqueness', async () => {
  for (const table of tables) {
    const { rows } = await db.execute<{ indexname: string; indexdef: string }>(
      sql`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ${table.name}`,
    );
    for (const index of table.indexes) {
      const name = index.config.name;
      assert.ok(name, `an index of ${table.name} without a name`);
      const found = rows.find((r) => r.indexname === name);
      assert.ok(found, `index ${name} on ${table.name} (the database has: ${rows.map((r) => r.indexname).join(', ')})`);
      assert.equal(found.indexdef.startsWith('CREATE UNIQUE INDEX'), index.config.unique, `${name} unique`);
    }
  }
});

test('drizzle-kit generate finds nothing to migrate: its last snapshot is the schema', async () => {
  // A copy of the migrations, so that a failing run leaves no new file in the repository. drizzle-kit joins `out`
  // to the working directory, so it is given relative to the root.
  const scratch = mkdtempSync(path.join(ROOT, '.drizzle-check-'));
  try {
    cpSync(path.join(ROOT, 'libs/db/migrations'), path.join(scratch, 'migrations'), { recursive: true });
    const config = path.join(scratch, 'drizzle.config.ts');
    writeFileSync(
      config,
      `export default ${JSON.stringify({ dialect: 'postgresql', schema: './libs/db/src/schema.ts', out: `./${path.relative(ROOT, scratch)}/migrations` })};\n`,
    );
    const { stdout } = await promisify(execFile)(path.join(ROOT, 'node_modules/.bin/drizzle-kit'), ['generate', '--config', config], {
      cwd: ROOT,
      timeout: 60_000,
    });
    assert.match(stdout, /No schema changes, nothing to migrate/, stdout.split('\n').slice(-12).join('\n'));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
