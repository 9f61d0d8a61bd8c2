/**
 * database.readUrl: records-api's read routes (records, calls, meetings) read from a second database, as they would
 * from a streaming replica, while operator actions stay on the primary they write to. Two databases of different
 * content stand in for primary and replica, so each answer shows where it was read.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '@cms/config';
import { createDatabase } from '@cms/db';
import { createLogger } from '@cms/observability';
import { buildRecordsApi } from '@cms/records-api';
import { onTestFileEnd, testDatabase } from '../helpers/infra.ts';
import { bearer, insertCalls, insertRecords, recordsApiConfig, TOKENS } from '../helpers/records-fixtures.ts';

const primary = await testDatabase();
const replica = await testDatabase();

const CALL_ON_REPLICA = 'ca110000-0000-4000-8000-00000000abcd';

test('DATABASE_READ_URL sets database.readUrl; without it there is none', () => {
  const config = loadConfig({ env: { DATABASE_READ_URL: 'postgres://reader@replica:5432/cms_cdr' } });
  assert.equal(config.database.readUrl, 'postgres://reader@replica:5432/cms_cdr');
  assert.equal(loadConfig({ env: {} }).database.readUrl, undefined);
});

test("records and calls are read from the read database, the actions' audit from the primary; readiness checks both", async () => {
  await insertRecords(replica.db, [
    { session: 'only-on-replica', correlatorIndex: 0, type: 'callStart', time: '2026-12-07T09:00:00Z', callId: CALL_ON_REPLICA },
  ]);
  await insertRecords(primary.db, [{ session: 'only-on-primary', correlatorIndex: 0, type: 'callStart', time: '2026-12-07T09:00:00Z' }]);
  await insertCalls(replica.db, [{ id: CALL_ON_REPLICA, node: 'cms-1', name: 'On the replica', startedAt: '2026-12-07T09:00:00Z' }]);

  const config = recordsApiConfig(primary.url);
  // A pool of its own, which the test ends below to take the "replica" away.
  const readDb = createDatabase(replica.url, { applicationName: 'records-api-read' });
  const { app, metricsApp, close } = await buildRecordsApi({
    config,
    db: primary.db,
    readDb,
    log: createLogger('records-api', 'silent'),
  });
  onTestFileEnd(close);
  const get = async (url: string) => {
    const res = await app.inject({ method: 'GET', url, headers: bearer(TOKENS.admin) });
    assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    return res.json();
  };

  const sessions = (await get('/api/v1/records')).records.map((r: { session: string }) => r.session);
  assert.deepEqual(sessions, ['only-on-replica']);
  assert.equal((await get(`/api/v1/calls/${CALL_ON_REPLICA}`)).id, CALL_ON_REPLICA);
  assert.deepEqual(
    (await get('/api/v1/calls')).calls.map((c: { id: string }) => c.id),
    [CALL_ON_REPLICA],
  );
  const ready = await metricsApp.inject({ method: 'GET', url: '/readyz' });
  assert.equal(ready.statusCode, 200, ready.body);
  assert.match(ready.body, /postgres-read/);

  // The replica going away fails readiness under its own name and the read routes, not the actions' audit.
  await readDb.$client.end();
  const notReady = await metricsApp.inject({ method: 'GET', url: '/readyz' });
  assert.equal(notReady.statusCode, 503);
  assert.match(notReady.body, /postgres-read/);
  const records = await app.inject({ method: 'GET', url: '/api/v1/records', headers: bearer(TOKENS.admin) });
  assert.equal(records.statusCode, 503, records.body);
  assert.deepEqual((await get('/api/v1/actions')).actions, []);
});
