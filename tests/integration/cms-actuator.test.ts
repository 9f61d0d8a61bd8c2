import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { callMessages, calls, cmsWrites } from '@cms/db';
import type { Registry } from '@cms/observability';
import { type CmsWritesQueue, createCmsWritesQueue, enqueueCallMessageWrite } from '@cms/queue';
import { asc, eq, sql } from 'drizzle-orm';
import type { ActuatorService } from '../../services/cms-actuator/src/app.ts';
import type { ActuatorTuning } from '../../services/cms-actuator/src/tuning.ts';
import {
  actuatorTestBackends,
  closeActuators,
  FAST_ACTUATOR_TUNING,
  oneNodeActuatorConfig,
  type StartedActuator,
  startOneBridgeSimulator,
  startTestActuator,
} from '../helpers/actuator.ts';
import { eventually } from '../helpers/infra.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

const NODE = 'cms-1';

const { sim, bridge } = await startOneBridgeSimulator(NODE, 'actuator-test-pass');
const { db, redisUrl, basePrefix, producer } = await actuatorTestBackends();
let testNo = 0;
const running: StartedActuator[] = [];

interface Harness {
  service: ActuatorService;
  registry: Registry;
  queue: CmsWritesQueue;
}

/** An actuator on its own queue prefix (so no test sees another's jobs), pointed at `url` (default: the sim). */
async function startActuator(options: { url?: string; caFile?: string; tuning?: Partial<ActuatorTuning> } = {}): Promise<Harness> {
  const prefix = `${basePrefix}-${++testNo}`;
  const config = oneNodeActuatorConfig({ redisUrl, prefix, node: NODE, bridge, url: options.url, caFile: options.caFile });
  const { service, registry } = await startTestActuator(config, { db, tuning: { ...FAST_ACTUATOR_TUNING, ...options.tuning } });
  const queue = createCmsWritesQueue(NODE, { connection: producer, prefix });
  running.push({ service, queue });
  return { service, registry, queue };
}

interface Desire {
  text: string;
  position?: string | null;
  duration?: string;
}

/** Stands in for the policy worker: upsert the desired state (bumping version), then enqueue with the shared helper. */
async function desire(h: Harness, callId: string, message: Desire): Promise<number> {
  const position = message.position === undefined ? 'bottom' : message.position;
  const duration = message.duration ?? 'permanent';
  const [row] = await db
    .insert(callMessages)
    .values({
      callId,
      node: NODE,
      meetingKey: callId,
      level: 2,
      messageText: message.text,
      messagePosition: position,
      messageDuration: duration,
    })
    .onConflictDoUpdate({
      target: callMessages.callId,
      set: {
        messageText: message.text,
        messagePosition: position,
        messageDuration: duration,
        version: sql`${callMessages.version} + 1`,
        desiredAt: sql`now()`,
        status: 'pending',
      },
    })
    .returning({ version: callMessages.version });
  await enqueueCallMessageWrite(h.queue, callId);
  return row!.version;
}

async function messageRow(callId: string) {
  const [row] = await db.select().from(callMessages).where(eq(callMessages.callId, callId));
  return row;
}

async function writesFor(callId: string) {
  return db.select().from(cmsWrites).where(eq(cmsWrites.callId, callId)).orderBy(asc(cmsWrites.id));
}

function putsTo(callId: string) {
  return sim.writeLog({ method: 'PUT', urlContains: callId });
}

async function metric(h: Harness, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const found = (await h.registry.getSingleMetric(name)?.get())?.values.find((v) =>
    Object.entries(labels).every(([k, value]) => v.labels[k] === value),
  );
  return found?.value;
}

afterEach(async () => {
  sim.setFaults({ latencyMs: 0, latencyJitterMs: 0, fraction503: 0, maxWritesPerSecond: null, forbidden: false });
  await closeActuators(running);
});

describe('making CMS show the desired message', () => {
  test('a desired message is written to the call and recorded as applied', async () => {
    const h = await startActuator();
    const callId = sim.startCall({ name: 'written' }).callId();
    const version = await desire(h, callId, { text: 'Security Level 2' });

    const row = await eventually(async () => {
      const r = await messageRow(callId);
      return r?.status === 'applied' && r;
    });
    assert.equal(row.appliedVersion, version);
    assert.ok(row.appliedAt);
    const shown = sim.inspectCall(callId);
    assert.equal(shown.messageText, 'Security Level 2');
    assert.equal(shown.messagePosition, 'bottom');
    assert.equal(shown.messageDuration, 'permanent');
    assert.deepEqual(putsTo(callId)[0]?.params, {
      messageText: 'Security Level 2',
      messagePosition: 'bottom',
      messageDuration: 'permanent',
    });
    const [write] = await writesFor(callId);
    assert.equal(write?.status, 'applied');
    assert.equal(write?.node, NODE);
    assert.equal(write?.kind, 'callMessage');
    assert.equal(write?.desiredText, 'Security Level 2');
    assert.equal(write?.version, version);
    assert.equal(write?.httpStatus, 200);
    assert.equal(write?.attempts, 1);
    assert.ok((write?.latencyMs ?? -1) >= 0);
    assert.equal(await metric(h, 'cms_writes_total', { node: NODE, outcome: 'applied' }), 1);
  });

  test('40 desired-state changes for one call in a burst cost at most two writes, the last one the latest', async () => {
    // CMS answers slowly, so the burst lands while the first write is in flight: whatever the machine's speed, the
    // first write carries the first change and the 39 others must fold into one follow-up write of the latest.
    sim.setFaults({ latencyMs: 2_000 });
    const h = await startActuator({ tuning: { requestTimeoutMs: 10_000 } });
    const callId = sim.startCall({ name: 'burst of joins' }).callId();
    const text = (i: number) => `Security Level ${(i % 3) + 1} (${i})`;
    let last = await desire(h, callId, { text: text(1) });
    await eventually(async () => ((await h.queue.getJobCounts('active')).active ?? 0) > 0, { what: 'first write in flight' });
    for (let i = 2; i <= 40; i++) last = await desire(h, callId, { text: text(i) });
    assert.equal((await messageRow(callId))?.appliedVersion ?? null, null, 'the first write was still in flight when the burst ended');

    await eventually(async () => (await messageRow(callId))?.appliedVersion === last, {
      what: 'latest version applied',
      timeoutMs: 30_000,
    });
    const puts = putsTo(callId);
    assert.ok(puts.length >= 1 && puts.length <= 2, `${puts.length} PUTs`);
    assert.equal(puts.at(-1)?.params.messageText, `Security Level ${(40 % 3) + 1} (40)`);
    assert.equal(sim.inspectCall(callId).messageText, `Security Level ${(40 % 3) + 1} (40)`);
  });

  test('a change made while the write of the previous one is in flight is written afterwards', async () => {
    // Every CMS request takes 150 ms, so the second change lands while the first job is active (its job folds into
    // the active one's follow-up); it must still reach CMS.
    sim.setFaults({ latencyMs: 150 });
    const h = await startActuator();
    const callId = sim.startCall({ name: 'changed mid-write' }).callId();
    await desire(h, callId, { text: 'Security Level 1' });
    await eventually(async () => ((await h.queue.getJobCounts('active')).active ?? 0) > 0, { what: 'first write in flight' });
    const latest = await desire(h, callId, { text: 'Security Level 3' });

    await eventually(async () => (await messageRow(callId))?.appliedVersion === latest, { what: 'second version applied' });
    assert.equal(sim.inspectCall(callId).messageText, 'Security Level 3');
  });

  test('no PUT when CMS already shows the desired message: recorded as unchanged', async () => {
    const h = await startActuator();
    const callId = sim.startCall({ name: 'already shown' }).callId();
    sim.updateCall(callId, { messageText: 'Security Level 1', messagePosition: 'bottom', messageDuration: 'permanent' });
    const version = await desire(h, callId, { text: 'Security Level 1' });

    const row = await eventually(async () => {
      const r = await messageRow(callId);
      return r?.status === 'unchanged' && r;
    });
    assert.equal(row.appliedVersion, version);
    assert.equal(putsTo(callId).length, 0);
    assert.deepEqual(
      (await writesFor(callId)).map((w) => w.status),
      ['unchanged'],
    );
  });

  test('a cleared desired message clears the call (empty text, duration 0)', async () => {
    const h = await startActuator();
    const callId = sim.startCall({ name: 'cleared' }).callId();
    sim.updateCall(callId, { messageText: 'Security Level 3', messagePosition: 'bottom', messageDuration: 'permanent' });
    await desire(h, callId, { text: '', position: null, duration: '0' });

    await eventually(async () => (await messageRow(callId))?.status === 'applied');
    assert.deepEqual(putsTo(callId)[0]?.params, { messageText: '', messageDuration: '0' });
    assert.equal(sim.inspectCall(callId).messageVisible, false);
  });

  test('a job for a call without desired state does nothing', async () => {
    const h = await startActuator();
    const callId = sim.startCall({ name: 'no desired state' }).callId();
    await enqueueCallMessageWrite(h.queue, callId);
    await eventually(async () => {
      const c = await h.queue.getJobCounts('wait', 'active', 'delayed', 'completed', 'failed');
      return (c.wait ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0;
    });
    assert.equal(sim.writeLog({ urlContains: callId }).length, 0);
    assert.equal((await writesFor(callId)).length, 0);
  });
});

describe('calls that are gone', () => {
  test('404 from CMS drops the write, records callEnded and marks the call ended', async () => {
    const h = await startActuator();
    const callId = randomUUID(); // CMS has never heard of it (the call ended before we wrote)
    await db.insert(calls).values({ id: callId, node: NODE, name: 'ended meanwhile' });
    await desire(h, callId, { text: 'Security Level 2' });

    await eventually(async () => (await messageRow(callId))?.status === 'callEnded');
    const [call] = await db.select().from(calls).where(eq(calls.id, callId));
    assert.ok(call?.endedAt, 'calls.ended_at set');
    const writes = await writesFor(callId);
    assert.deepEqual(
      writes.map((w) => [w.status, w.httpStatus, w.failureReason]),
      [['callEnded', 404, 'callDoesNotExist']],
    );
    assert.equal(putsTo(callId).length, 0, 'no write spent on a call that is gone');
  });

  test('a call whose callEnd CDR is stored is not written at all', async () => {
    const h = await startActuator();
    const callId = sim.startCall({ name: 'ended per CDR' }).callId();
    await db.insert(calls).values({ id: callId, node: NODE, endedAt: new Date().toISOString() });
    await desire(h, callId, { text: 'Security Level 2' });

    await eventually(async () => (await messageRow(callId))?.status === 'callEnded');
    assert.equal(sim.writeLog({ urlContains: callId }).length, 0);
  });
});

describe('failures', () => {
  test('503s for a stretch slow the node down, do not count as attempts, and the write lands afterwards', async () => {
    const h = await startActuator();
    const callId = sim.startCall({ name: 'busy' }).callId();
    sim.setFaults({ fraction503: 1 });
    await desire(h, callId, { text: 'Security Level 3' });
    await eventually(async () => (await writesFor(callId)).filter((w) => w.httpStatus === 503).length >= 3, { what: 'three 503s' });
    sim.setFaults({ fraction503: 0 });

    await eventually(async () => (await messageRow(callId))?.status === 'applied', { what: 'applied after the busy spell' });
    assert.equal(sim.inspectCall(callId).messageText, 'Security Level 3');
    const writes = await writesFor(callId);
    const busy = writes.filter((w) => w.httpStatus === 503);
    assert.ok(busy.length >= 3, `${busy.length} busy outcomes recorded`);
    assert.ok(busy.every((w) => w.status === 'retrying' && w.attempts === 1));
    assert.equal(writes.at(-1)?.status, 'applied');
    assert.equal(writes.at(-1)?.attempts, 1, 'the 503s did not use up attempts');
    assert.ok(((await metric(h, 'cms_writes_total', { node: NODE, outcome: 'busy' })) ?? 0) >= 3);
  });

  test('timeouts are retried with back-off, then the write is dead-lettered', async () => {
    const h = await startActuator({ tuning: { requestTimeoutMs: 100 } });
    const callId = sim.startCall({ name: 'never answers in time' }).callId();
    sim.setFaults({ latencyMs: 400 });
    const version = await desire(h, callId, { text: 'Security Level 2' });

    await eventually(async () => (await messageRow(callId))?.status === 'deadLettered', { timeoutMs: 30_000, what: 'dead-lettered' });
    const writes = await writesFor(callId);
    assert.deepEqual(
      writes.map((w) => [w.status, w.attempts, w.failureReason, w.httpStatus]),
      [...Array.from({ length: 7 }, (_, i) => ['retrying', i + 1, 'timeout', null]), ['deadLettered', 8, 'timeout', null]],
    );
    assert.ok(writes.every((w) => w.version === version));
    assert.equal((await messageRow(callId))?.appliedVersion, null);
    assert.equal(await metric(h, 'cms_writes_total', { node: NODE, outcome: 'deadLettered' }), 1);
    assert.equal(await h.queue.getFailedCount(), 1, 'kept in the failed set for an operator');
  });

  test('a refused parameter is dead-lettered at once (retrying would not help)', async () => {
    const h = await startActuator();
    const callId = sim.startCall({ name: 'bad duration' }).callId();
    await desire(h, callId, { text: 'Security Level 2', duration: 'forever' });

    await eventually(async () => (await messageRow(callId))?.status === 'deadLettered');
    assert.deepEqual(
      (await writesFor(callId)).map((w) => [w.status, w.httpStatus, w.failureReason, w.attempts]),
      [['deadLettered', 400, 'parameterError', 1]],
    );
  });
});

describe('credentials refused', () => {
  test('401 marks the node unhealthy and holds its writes; they resume once CMS accepts us again', async () => {
    // The same node URL first leads to a Call Bridge that does not know our password, then to one that does.
    const refusing = await startSimulator({ controlPort: null, bridges: [{ name: NODE, password: 'someone-changed-it' }] });
    // The same node URL first leads to the refusing Call Bridge, then (retargeted) to one that knows us.
    const proxy = await startTcpProxy('127.0.0.1', refusing.bridge(NODE).port);
    try {
      const h = await startActuator({ url: `http://127.0.0.1:${proxy.port}` });
      const callId = sim.startCall({ name: 'held' }).callId();
      await desire(h, callId, { text: 'Security Level 2' });

      await eventually(async () => (await h.service.app.inject('/readyz')).statusCode === 503, { what: 'not ready' });
      const ready = (await h.service.app.inject('/readyz')).json() as { checks: { name: string; ok: boolean; error?: string }[] };
      const node = ready.checks.find((c) => c.name === `cms:${NODE}`);
      assert.equal(node?.ok, false);
      assert.match(node?.error ?? '', /credentials/);
      assert.equal(await metric(h, 'cms_node_healthy', { node: NODE }), 0);
      await eventually(async () => ((await h.queue.getJobCounts('wait')).wait ?? 0) === 1, { what: 'job held in the queue' });
      assert.equal(putsTo(callId).length, 0);
      assert.equal((await messageRow(callId))?.status, 'pending');

      proxy.retarget('127.0.0.1', bridge.port);
      await eventually(async () => (await messageRow(callId))?.status === 'applied', { what: 'applied after the fix' });
      assert.equal(sim.inspectCall(callId).messageText, 'Security Level 2');
      assert.equal(await metric(h, 'cms_node_healthy', { node: NODE }), 1);
      assert.equal((await h.service.app.inject('/readyz')).statusCode, 200);
      // The start-up probe may have found the refusal before the job ran; a job that met it is recorded as held.
      const writes = await writesFor(callId);
      assert.ok(writes.slice(0, -1).every((w) => w.status === 'held' && w.httpStatus === 401));
      assert.equal(writes.at(-1)?.status, 'applied');
      assert.equal(writes.at(-1)?.attempts, 1, 'held writes do not use up attempts');
    } finally {
      await proxy.close();
      await refusing.stop();
    }
  });
});

/**
 * A write for a call on `cms` while the node refuses us in a way retrying cannot fix: /readyz fails with `problem`,
 * the job stays queued, nothing is written; after `fix()` the write lands once, and every earlier attempt was
 * recorded as held (with `httpStatus`), using up no attempts.
 */
async function heldUntilFixed(h: Harness, cms: Simulator, problem: RegExp, httpStatus: number | null, fix: () => void): Promise<void> {
  const callId = cms.startCall({ name: 'held' }).callId();
  await desire(h, callId, { text: 'Security Level 2' });

  await eventually(async () => (await h.service.app.inject('/readyz')).statusCode === 503, { what: 'not ready' });
  const ready = (await h.service.app.inject('/readyz')).json() as { checks: { name: string; ok: boolean; error?: string }[] };
  const node = ready.checks.find((c) => c.name === `cms:${NODE}`);
  assert.equal(node?.ok, false);
  assert.match(node?.error ?? '', problem);
  assert.equal(await metric(h, 'cms_node_healthy', { node: NODE }), 0);
  await eventually(async () => ((await h.queue.getJobCounts('wait')).wait ?? 0) === 1, { what: 'job held in the queue' });
  assert.equal(cms.writeLog({ method: 'PUT', urlContains: callId }).filter((w) => w.outcome === 'applied').length, 0);
  assert.equal((await messageRow(callId))?.status, 'pending');
  assert.equal(cms.inspectCall(callId).messageText, '');

  fix();
  await eventually(async () => (await messageRow(callId))?.status === 'applied', { what: 'applied after the fix' });
  assert.equal(cms.inspectCall(callId).messageText, 'Security Level 2');
  assert.equal(await metric(h, 'cms_node_healthy', { node: NODE }), 1);
  assert.equal((await h.service.app.inject('/readyz')).statusCode, 200);
  const writes = await writesFor(callId);
  assert.ok(
    writes.slice(0, -1).every((w) => w.status === 'held' && w.httpStatus === httpStatus),
    JSON.stringify(writes.map((w) => [w.status, w.httpStatus])),
  );
  assert.equal(writes.at(-1)?.status, 'applied');
  assert.equal(writes.at(-1)?.attempts, 1, 'held writes do not use up attempts');
  assert.equal(cms.writeLog({ method: 'PUT', urlContains: callId }).filter((w) => w.outcome === 'applied').length, 1);
}

describe('API role refused (403)', () => {
  test('403 holds the node like 401: /readyz fails and writes wait until CMS lets us in again', async () => {
    sim.setFaults({ forbidden: true });
    const h = await startActuator();
    await heldUntilFixed(h, sim, /refused our API credentials \(403/, 403, () => sim.setFaults({ forbidden: false }));
    assert.ok((sim.inspect().bridges[0]?.counters.forbidden ?? 0) >= 1, 'CMS did answer 403');
  });
});

describe('certificate refused', () => {
  // A CA of our own for the actuator to trust, with a valid and an expired certificate (tests/fixtures/tls).
  const RENEWAL = join(import.meta.dirname, '../fixtures/tls');
  const SIM_TLS = join(import.meta.dirname, '../../tools/cms-sim/fixtures/tls');
  const renewed = { keyFile: `${RENEWAL}/server-key.pem`, certFile: `${RENEWAL}/server-cert.pem` };

  async function tlsBridge(certificate: { keyFile: string; certFile: string }): Promise<Simulator> {
    return startSimulator({
      controlPort: null,
      tls: certificate,
      bridges: [{ name: NODE, username: bridge.username, password: bridge.password }],
    });
  }

  test('an expired CMS certificate holds the node (not ready, writes wait) until it is renewed', async () => {
    const cms = await tlsBridge({ keyFile: `${RENEWAL}/server-key.pem`, certFile: `${RENEWAL}/expired-cert.pem` });
    try {
      const h = await startActuator({ url: cms.bridge(NODE).url, caFile: `${RENEWAL}/ca.pem` });
      await heldUntilFixed(h, cms, /certificate of CMS .* could not be verified/, null, () => cms.setTls(renewed));
    } finally {
      await cms.stop();
    }
  });

  test('a CMS certificate from a CA we do not trust holds the node until CMS serves one we trust', async () => {
    const cms = await tlsBridge({ keyFile: `${SIM_TLS}/server-key.pem`, certFile: `${SIM_TLS}/server-cert.pem` });
    try {
      const h = await startActuator({ url: cms.bridge(NODE).url, caFile: `${RENEWAL}/ca.pem` });
      await heldUntilFixed(h, cms, /certificate of CMS .* could not be verified/, null, () => cms.setTls(renewed));
    } finally {
      await cms.stop();
    }
  });
});

describe('service', () => {
  test('/readyz reports Redis, Postgres, the BullMQ workers and each CMS node; /metrics exposes the write metrics', async () => {
    const h = await startActuator();
    const ready = await h.service.app.inject('/readyz');
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(
      (ready.json() as { checks: { name: string }[] }).checks.map((c) => c.name),
      ['redis', 'postgres', 'workers', `cms:${NODE}`],
    );
    const metrics = (await h.service.app.inject('/metrics')).body;
    for (const name of ['cms_writes_total', 'cms_write_duration_seconds', 'cms_write_queue_depth', 'cms_node_healthy']) {
      assert.match(metrics, new RegExp(`# TYPE ${name} `));
    }
    assert.equal((await h.service.app.inject('/healthz')).statusCode, 200);
  });

  test('the queue-depth gauge follows the jobs waiting for a node', async () => {
    const h = await startActuator();
    await h.service.writers.get(NODE)!.worker.pause(); // stand-in for a backlog: nothing is taken
    for (let i = 0; i < 3; i++) await desire(h, randomUUID(), { text: 'Security Level 1' });
    await eventually(async () => (await metric(h, 'cms_write_queue_depth', { node: NODE })) === 3, { what: 'depth 3' });
  });
});
