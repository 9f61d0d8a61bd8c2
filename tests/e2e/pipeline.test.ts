import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { legUpdateBatches, recordsXml, simpleCallRecords, type TestRecord } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd } from '../helpers/infra.ts';
import { type Stack, startStack, storedRecords } from '../helpers/stack.ts';

const agent = new Agent({ connections: 16 });
onTestFileEnd(() => agent.close());

async function postCdr(stack: Stack, body: string, node = 'cms1'): Promise<number> {
  const res = await request(`${stack.url('cdr-ingest')}/cdr/${node}?token=${stack.ingestToken}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/xml' },
    dispatcher: agent,
  });
  await res.body.dump();
  return res.statusCode;
}

/** The parts of API answers these tests read. */
interface ApiBody {
  records?: { type: string; node: string | null }[];
  legs?: { id: string }[];
}

async function apiGet(stack: Stack, path: string): Promise<{ status: number; json: ApiBody }> {
  const res = await request(`${stack.url('records-api')}${path}`, {
    headers: { authorization: `Bearer ${stack.apiToken}` },
    dispatcher: agent,
  });
  return { status: res.statusCode, json: (await res.body.json()) as ApiBody };
}

function countSession(stack: Stack, session: string): Promise<{ total: number; distinct: number }> {
  return storedRecords(stack.databaseUrl, session);
}

/** A counter from a service's /metrics (0 when it has no sample yet). */
async function metric(stack: Stack, service: 'policy-worker' | 'cdr-ingest', name: string): Promise<number> {
  const text = await (await fetch(`${stack.metricsUrl(service)}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** A run of `total` records in batches of `perBatch`, as one Call Bridge session would send them. */
function run(session: string, total: number, perBatch: number): string[] {
  return runBatches(session, total, perBatch).map((records) => recordsXml({ session, records }));
}

function runBatches(session: string, total: number, perBatch: number): TestRecord[][] {
  return legUpdateBatches(session, total, perBatch, { legs: 500, calls: 50 });
}

async function postAll(stack: Stack, bodies: string[], concurrency = 8): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++] as string;
        assert.equal(await postCdr(stack, body), 200);
      }
    }),
  );
}

describe('the CDR pipeline as separate processes', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ env: { POLICY_WORKER_LOCK_MS: '2000' } });
  });

  test('a posted batch is readable from the records API', async () => {
    const ids = { call: randomUUID(), leg: randomUUID(), correlator: randomUUID() };
    const session = randomUUID();
    assert.equal(await postCdr(stack, recordsXml({ session, callBridge: randomUUID(), records: simpleCallRecords(0, ids) })), 200);
    const records = await eventually(
      async () => {
        const res = await apiGet(stack, `/api/v1/records?session=${session}`);
        return res.json.records?.length === 5 ? res.json.records : undefined;
      },
      { what: 'the 5 records in the API' },
    );
    assert.deepEqual(
      records.map((r) => r.type),
      ['callLegStart', 'callStart', 'callLegUpdate', 'callLegEnd', 'callEnd'],
    );
    assert.equal(records[0]?.node, 'cms1');
    const call = await apiGet(stack, `/api/v1/calls/${ids.call}`);
    assert.equal(call.status, 200, JSON.stringify(call.json) + (stack.services['records-api']?.output.join('').slice(-3000) ?? ''));
    assert.equal(call.json.legs?.[0]?.id, ids.leg);
  });

  test('the same batch posted twice is stored once', async () => {
    const session = randomUUID();
    const body = recordsXml({ session, records: simpleCallRecords() });
    // The unique index alone keeps the table free of copies; what is checked here is that the second copy went
    // all the way through and was recognised as one (not refused, lost, or failing the group it landed in).
    const duplicatesBefore = await metric(stack, 'policy-worker', 'cdr_records_duplicate_total');
    assert.equal(await postCdr(stack, body), 200);
    assert.equal(await postCdr(stack, body), 200);
    // A marker batch posted after both is stored after them (FIFO), so when it is visible both were processed.
    const marker = randomUUID();
    assert.equal(await postCdr(stack, recordsXml({ session: marker, records: simpleCallRecords() })), 200);
    await eventually(async () => (await countSession(stack, marker)).total === 5, { what: 'the marker batch' });
    await eventually(async () => (await metric(stack, 'policy-worker', 'cdr_records_duplicate_total')) - duplicatesBefore === 5, {
      what: 'the 5 records sent twice counted as duplicates',
    });
    assert.deepEqual(await countSession(stack, session), { total: 5, distinct: 5 });
  });

  test('kill -9 of the worker in the middle of a 10,000-record run loses and duplicates nothing', async () => {
    const session = randomUUID();
    // As CMS re-sends records whose POST it saw no answer to: every 20th POST carries 10 records already sent
    // (7 batches earlier) together with the next 10 new ones, which are sent in no other POST. 490 records reach
    // the worker twice, before and after the kill, and a POST holding copies must still store its new records.
    const batches = runBatches(session, 10_000, 10);
    const bodies: string[] = [];
    let resent = 0;
    for (let i = 0; i < batches.length; i++) {
      bodies.push(recordsXml({ session, records: batches[i] as TestRecord[] }));
      if (i % 20 === 19 && i + 1 < batches.length) {
        bodies.push(recordsXml({ session, records: [...(batches[i - 7] as TestRecord[]), ...(batches[++i] as TestRecord[])] }));
        resent += 10;
      }
    }
    assert.equal(resent, 490);
    const posting = postAll(stack, bodies);
    const worker = stack.services['policy-worker'];
    assert.ok(worker);
    await eventually(async () => (await countSession(stack, session)).total >= 1_000, { what: '1,000 records stored', timeoutMs: 60_000 });
    worker.process.kill('SIGKILL');
    assert.equal((await worker.exited).signal, 'SIGKILL');
    await posting;
    const before = await countSession(stack, session);
    assert.ok(before.total < 10_000, `the worker was killed mid-run (${before.total} stored)`);
    await stack.start('policy-worker');
    await eventually(async () => (await countSession(stack, session)).total === 10_000, {
      what: 'all 10,000 records after restart',
      timeoutMs: 90_000,
    });
    assert.deepEqual(await countSession(stack, session), { total: 10_000, distinct: 10_000 });
  });

  test('SIGTERM stops the worker cleanly and a new one finishes the run', async () => {
    const session = randomUUID();
    const posting = postAll(stack, run(session, 3_000, 10));
    const worker = stack.services['policy-worker'];
    assert.ok(worker);
    await eventually(async () => (await countSession(stack, session)).total >= 300, { what: '300 records stored', timeoutMs: 60_000 });
    worker.process.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
    await posting;
    await stack.start('policy-worker');
    await eventually(async () => (await countSession(stack, session)).total === 3_000, { what: 'all 3,000 records', timeoutMs: 60_000 });
    assert.deepEqual(await countSession(stack, session), { total: 3_000, distinct: 3_000 });
  });
});
