/**
 * The metrics the dashboard and the alerts are built on say what is true at scrape time: every configured CMS node
 * is listed before it ever sends, the backlog and the age of the oldest waiting batch come from Redis, meetings and
 * participants by security level come from Postgres, and readiness is a metric. Real Redis and Postgres.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { type Config, loadConfig } from '@cms/config';
import { createDatabase, type Database } from '@cms/db';
import { createLogger } from '@cms/observability';
import { buildRecordsApi } from '@cms/records-api';
import type { FastifyInstance } from 'fastify';
import { buildIngest } from '../../services/cdr-ingest/src/app.ts';
import { buildPolicyWorker } from '../../services/policy-worker/src/app.ts';
import { recordsXml, simpleCallRecords } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';
import { insertCallLegs, insertCalls, insertMeetings, recordsApiConfig } from '../helpers/records-fixtures.ts';

const TOKEN = 'metrics-test-token-0123456789';

/** The samples of one metric in a scrape, by their label set ("" without labels). */
async function scrape(app: FastifyInstance, name: string): Promise<Map<string, number>> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  const samples = new Map<string, number>();
  for (const line of res.body.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    // The registry's default label (service) is the same on every sample: leave it out of the key.
    const labels = (match[2] ?? '')
      .split(',')
      .filter((l) => l && !l.startsWith('service='))
      .join(',');
    samples.set(labels, Number(match[3]));
  }
  return samples;
}

describe('cdr-ingest metrics', () => {
  test('every configured node has a last-CDR time from start-up; a CDR moves its node on; backlog and oldest batch come from Redis', async () => {
    const redis = await testRedis();
    const config = loadConfig({
      env: {},
      overrides: {
        redis: { url: redis.url },
        queue: { prefix: redis.prefix },
        ingest: { token: TOKEN, maxBacklog: 1234 },
        cms: {
          nodes: ['cms1', 'cms2'].map((name) => ({ name, url: `https://${name}.example.com:445`, username: 'u', password: 'p' })),
        },
      },
    });
    const startedAt = Date.now() / 1000;
    const ingest = await buildIngest({ config, log: createLogger('cdr-ingest', 'silent') });
    onTestFileEnd(() => ingest.close());
    // Scraped on the metrics port; POSTs go to the main port.
    const { app, metricsApp } = ingest;

    const silentSince = await scrape(metricsApp, 'cdr_ingest_last_record_timestamp_seconds');
    assert.deepEqual([...silentSince.keys()].sort(), ['node="cms1"', 'node="cms2"'], 'both configured nodes, before either sent');
    for (const [node, at] of silentSince) assert.ok(at >= startedAt - 1 && at <= Date.now() / 1000, `${node} counted from start-up: ${at}`);
    assert.deepEqual(Object.fromEntries(await scrape(metricsApp, 'cdr_ingest_records_total')), { 'node="cms1"': 0, 'node="cms2"': 0 });
    assert.deepEqual(Object.fromEntries(await scrape(metricsApp, 'cdr_ingest_max_backlog_batches')), { '': 1234 });
    assert.deepEqual(Object.fromEntries(await scrape(metricsApp, 'cdr_ingest_backlog_batches')), { '': 0 });
    assert.deepEqual(Object.fromEntries(await scrape(metricsApp, 'cdr_ingest_oldest_waiting_batch_seconds')), { '': 0 });

    // No policy worker runs: the batch stays waiting, and its age grows.
    const postedAt = Date.now() / 1000;
    const res = await app.inject({
      method: 'POST',
      url: `/cdr/cms1?token=${TOKEN}`,
      payload: recordsXml({ session: randomUUID(), records: simpleCallRecords() }),
      headers: { 'content-type': 'text/xml' },
    });
    assert.equal(res.statusCode, 200);
    const last = await scrape(metricsApp, 'cdr_ingest_last_record_timestamp_seconds');
    assert.ok((last.get('node="cms1"') ?? 0) >= postedAt, 'cms1 moved to the time of its CDR');
    assert.equal(last.get('node="cms2"'), silentSince.get('node="cms2"'), 'cms2 still counts from start-up');
    assert.equal((await scrape(metricsApp, 'cdr_ingest_backlog_batches')).get(''), 1);
    assert.equal((await scrape(metricsApp, 'cdr_queue_batches')).get('state="wait"'), 1);
    const age = await eventually(
      async () => {
        const seconds = (await scrape(metricsApp, 'cdr_ingest_oldest_waiting_batch_seconds')).get('') ?? 0;
        return seconds >= 0.5 ? seconds : undefined;
      },
      { what: 'the waiting batch to age' },
    );
    assert.ok(age < 60, `age ${age} s`);
  });
});

describe('policy-worker metrics', () => {
  test('each configured node has a gap counter at 0 from start-up, so its first gap is an increase', async () => {
    const redis = await testRedis();
    const { url, db } = await testDatabase();
    const config = loadConfig({
      env: {},
      overrides: {
        redis: { url: redis.url },
        queue: { prefix: redis.prefix },
        database: { url },
        cms: {
          nodes: ['cms1', 'cms2'].map((name) => ({ name, url: `https://${name}.example.com:445`, username: 'u', password: 'p' })),
        },
      },
    });
    const worker = await buildPolicyWorker({ config, db, log: createLogger('policy-worker', 'silent') });
    onTestFileEnd(() => worker.close());
    assert.deepEqual(Object.fromEntries(await scrape(worker.app, 'cdr_gaps_total')), { 'node="cms1"': 0, 'node="cms2"': 0 });
  });
});

/** A records API on `db`; its metrics listener (what Prometheus scrapes on api.metricsPort), closed when the file ends. */
async function recordsApiMetrics(db: Database, config: Config): Promise<FastifyInstance> {
  const service = await buildRecordsApi({ config, db, log: createLogger('records-api', 'silent') });
  onTestFileEnd(() => service.close());
  return service.metricsApp;
}

describe('records-api metrics', () => {
  test('active meetings and their participants by security level, counted at scrape', async () => {
    const { url, db } = await testDatabase();
    const app = await recordsApiMetrics(db, recordsApiConfig(url));
    const [m1, m2] = [randomUUID(), randomUUID()];
    const [c1, c2, c3] = [randomUUID(), randomUUID(), randomUUID()];
    const now = new Date().toISOString();
    await insertCalls(db, [
      // m1 (level 2): running, two participants in, one gone.
      { id: c1, node: 'cms1', callCorrelator: m1, startedAt: now },
      // m2 (level 3): over.
      { id: c2, node: 'cms1', callCorrelator: m2, startedAt: now, endedAt: now },
      // A call without a correlator and without a level yet: its own meeting, level none.
      { id: c3, node: 'cms2', startedAt: now },
    ]);
    await insertMeetings(db, [
      { meetingKey: m1, level: 2 },
      { meetingKey: m2, level: 3 },
    ]);
    await insertCallLegs(db, [
      { id: randomUUID(), callId: c1, node: 'cms1' },
      { id: randomUUID(), callId: c1, node: 'cms1' },
      { id: randomUUID(), callId: c1, node: 'cms1', endedAt: now },
      { id: randomUUID(), callId: c2, node: 'cms1' },
      { id: randomUUID(), callId: c3, node: 'cms2' },
    ]);
    assert.deepEqual(Object.fromEntries(await scrape(app, 'meetings_active')), {
      'level="1"': 0,
      'level="2"': 1,
      'level="3"': 0,
      'level="none"': 1,
    });
    assert.deepEqual(Object.fromEntries(await scrape(app, 'meeting_participants_active')), {
      'level="1"': 0,
      'level="2"': 2,
      'level="3"': 0,
      'level="none"': 1,
    });
    assert.deepEqual(Object.fromEntries(await scrape(app, 'service_ready')), { '': 1 });
    assert.deepEqual(Object.fromEntries(await scrape(app, 'readiness_check_ok')), { 'check="postgres"': 1 });
  });

  test('without Postgres the level gauges have no value, the failure is counted, and readiness says 0', async () => {
    // Nothing listens on port 1: every connection is refused at once.
    const unreachable = 'postgres://postgres@127.0.0.1:1/nowhere';
    const db = createDatabase(unreachable);
    onTestFileEnd(() => db.$client.end());
    const app = await recordsApiMetrics(db, recordsApiConfig(unreachable));
    assert.equal((await scrape(app, 'meetings_active')).size, 0);
    assert.equal((await scrape(app, 'meeting_participants_active')).size, 0);
    assert.ok(((await scrape(app, 'meeting_level_count_failures_total')).get('') ?? 0) >= 1);
    assert.deepEqual(Object.fromEntries(await scrape(app, 'service_ready')), { '': 0 });
    assert.deepEqual(Object.fromEntries(await scrape(app, 'readiness_check_ok')), { 'check="postgres"': 0 });
  });
});
