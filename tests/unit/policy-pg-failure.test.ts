/**
 * How the policy worker reads a failed commit: hold the batches (Postgres unavailable), store record by record and
 * quarantine the refused ones (a value Postgres refuses), or let the queue retry the batch (everything else).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pg } from '@cms/db';
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { classifyFailure, describeFailure } from '../../services/policy-worker/src/storage/pg-failure.ts';

function answer(code: string, message = 'postgres says no', detail?: string): pg.DatabaseError {
  const err = new pg.DatabaseError(message, 0, 'error');
  err.code = code;
  err.detail = detail;
  return err;
}

/** As drizzle throws it: its own message carries the query and parameters; the cause is what Postgres answered. */
const wrapped = (cause: Error) => new DrizzleQueryError('INSERT INTO cdr_records ...', ['[{"raw": ...}]'], cause);

test('Postgres unreachable, restarting or out of connections: unavailable (the worker holds the batches)', () => {
  for (const code of ['08006', '08001', '57P01', '57P02', '57P03', '53300'])
    assert.equal(classifyFailure(wrapped(answer(code))), 'unavailable', code);
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  assert.equal(classifyFailure(refused), 'unavailable');
  assert.equal(classifyFailure(new AggregateError([refused], 'connect failed')), 'unavailable');
  assert.equal(classifyFailure(wrapped(new Error('Connection terminated unexpectedly'))), 'unavailable');
  assert.equal(classifyFailure(new Error('Client has encountered a connection error and is not queryable')), 'unavailable');
  assert.equal(classifyFailure(new Error('timeout exceeded when trying to connect')), 'unavailable');
});

test('a value Postgres refuses: refused (stored record by record, the refused ones quarantined)', () => {
  for (const code of ['22009', '22008', '22P05', '22021', '22001', '23502', '23514', '54000']) {
    assert.equal(classifyFailure(wrapped(answer(code))), 'refused', code);
  }
});

test('conflicts and resources: transient, and anything else: other (both retried by the queue, nothing quarantined)', () => {
  for (const code of ['40001', '40P01', '55P03', '23505', '53100', '53200', '57014', '58030']) {
    assert.equal(classifyFailure(wrapped(answer(code))), 'transient', code);
  }
  for (const code of ['42P01', '42703', 'XX000']) assert.equal(classifyFailure(wrapped(answer(code))), 'other', code);
  assert.equal(classifyFailure(new TypeError("Cannot read properties of undefined (reading 'raw')")), 'other');
  assert.equal(classifyFailure('not even an error'), 'other');
});

test("the description is Postgres's answer, never drizzle's message with the query and its parameters", () => {
  assert.equal(
    describeFailure(wrapped(answer('22009', 'time zone displacement out of range: "2026-11-21T09:00:00+20:00"'))),
    'time zone displacement out of range: "2026-11-21T09:00:00+20:00" [SQLSTATE 22009]',
  );
  assert.equal(
    describeFailure(answer('23502', 'null value in column "type"', 'Failing row contains (...).')),
    'null value in column "type" (Failing row contains (...).) [SQLSTATE 23502]',
  );
  assert.equal(describeFailure(wrapped(new Error('Connection terminated unexpectedly'))), 'Connection terminated unexpectedly');
});
