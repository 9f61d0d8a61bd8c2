import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { basicAuthHeader, type Simulator, startSimulator } from '@cms/cms-sim';
import { type Config, loadConfig } from '@cms/config';
import { callLegObservations, callLegs, callMessages, calls, cmsWrites, meetings } from '@cms/db';
import { createLogger, type Registry } from '@cms/observability';
import { CMS_RECONCILE_QUEUE, type CmsReconcileJob } from '@cms/queue';
import { Queue } from 'bullmq';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { buildIngest } from '../../services/cdr-ingest/src/app.ts';
import type { ActuatorService } from '../../services/cms-actuator/src/app.ts';
import { placementKey } from '../../services/cms-actuator/src/reconcile/call-placement.ts';
import type { ActuatorTuning } from '../../services/cms-actuator/src/tuning.ts';
import { buildPolicyWorker } from '../../services/policy-worker/src/app.ts';
import { createReconcileRequester } from '../../services/policy-worker/src/security/reconcile-requests.ts';
import { actuatorTestBackends, cleanupsAfterEachTest, FAST_ACTUATOR_TUNING, startTestActuator } from '../helpers/actuator.ts';
import { eventually } from '../helpers/infra.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

const INGEST_TOKEN = 'reconcile-test-ingest-token';
const PASSWORD = 'reconcile-test-pass';
const silent = createLogger('cms-reconcile-test', 'silent');

const { db, redisUrl, basePrefix, producer } = await actuatorTestBackends();
let rigNo = 0;
/** Run after each test, last first: every rig stops what it started. */
const cleanups = cleanupsAfterEachTest();

interface ConfigOptions {
  actuator?: Record<string, unknown>;
  /** The first node's URL instead of its simulated bridge's. */
  url?: string;
}

interface Rig {
  sim: Simulator;
  /** CMS node names (= simulator bridge names), unique per test so no test sees another's calls. */
  nodes: string[];
  node: string;
  prefix: string;
  config(options?: ConfigOptions): Config;
}

/** A simulator with `bridges` Call Bridges and a queue prefix of its own; `cdrs` makes them post CDRs to an in-process receiver. */
async function rig(options: { bridges?: number; cdrs?: boolean; pageCap?: number } = {}): Promise<Rig> {
  const n = ++rigNo;
  const nodes = Array.from({ length: options.bridges ?? 1 }, (_, i) => `rc${n}-${String.fromCharCode(97 + i)}`);
  const prefix = `${basePrefix}-${n}`;
  const config = ({ actuator = {}, url }: ConfigOptions = {}): Config =>
    loadConfig({
      env: {},
      overrides: {
        log: { level: 'silent' },
        redis: { url: redisUrl },
        queue: { prefix },
        actuator: { reconcileIntervalSeconds: 0, readsPerSecond: 200, ...actuator },
        policy: { secureDomains: ['secure.example'], internalDomains: ['corp.example'] },
        cms: {
          // What is tested here is polling on its own (tests/integration/cms-events-feed.test.ts has the feed beside it).
          events: { enabled: false },
          nodes: nodes.map((name, i) => ({
            name,
            url: (i === 0 && url) || sim.bridge(name).url,
            username: 'admin',
            password: PASSWORD,
            maxWritesPerSecond: 20,
          })),
        },
      },
    });
  let receivers: string[] = [];
  if (options.cdrs) {
    // The receiver takes the node from its path (/cdr/<bridge>): it needs no node list.
    const ingestConfig = loadConfig({
      env: {},
      overrides: { log: { level: 'silent' }, redis: { url: redisUrl }, queue: { prefix }, ingest: { token: INGEST_TOKEN } },
    });
    const ingest = await buildIngest({ config: ingestConfig, log: silent });
    await ingest.app.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => ingest.close());
    const { port } = ingest.app.server.address() as AddressInfo;
    receivers = [`http://127.0.0.1:${port}/cdr/{bridge}?token=${INGEST_TOKEN}`];
  }
  const sim: Simulator = await startSimulator({
    controlPort: null,
    bridges: nodes.map((name) => ({ name, password: PASSWORD })),
    cdrReceivers: receivers,
    cdr: { flushDelayMs: 5, resendInitialMs: 20, resendMaxMs: 200 },
    ...(options.pageCap ? { pageCap: options.pageCap } : {}),
  });
  cleanups.push(() => sim.stop());
  return { sim, nodes, node: nodes[0] as string, prefix, config };
}

async function startPolicyWorker(r: Rig): Promise<void> {
  const worker = await buildPolicyWorker({ config: r.config(), db, log: silent });
  cleanups.push(() => worker.close());
}

async function startActuator(
  r: Rig,
  options: ConfigOptions & { tuning?: Partial<ActuatorTuning> } = {},
): Promise<{ service: ActuatorService; registry: Registry }> {
  // Short delays; the sweep stays at its production interval unless a test is about the sweep.
  const { service, registry } = await startTestActuator(r.config(options), { db, tuning: { ...FAST_ACTUATOR_TUNING, ...options.tuning } });
  cleanups.push(() => service.close());
  return { service, registry };
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value)).reduce((sum, v) => sum + v.value, 0);
}

/** Waits until `count` passes of `node` have finished with `outcome`. */
function passes(registry: Registry, node: string, count: number, outcome = 'ok') {
  return eventually(async () => (await metric(registry, 'cms_reconcile_passes_total', { node, outcome })) >= count, {
    what: `${count} ${outcome} reconciliation pass(es) of ${node}`,
  });
}

/** A meeting in progress: a participant from a secure domain and a guest (web app) who was let in. */
function meetingInProgress(r: Rig, name: string) {
  const meeting = r.sim.startCall({ name });
  const alice = r.sim.join({ meeting, remoteParty: 'alice@secure.example' });
  const guest = r.sim.join({ meeting, kind: 'guest', admitted: true });
  return { meeting, callId: meeting.callId(), alice, guest };
}

function shows(r: Rig, callId: string, text: string): boolean {
  const call = r.sim.inspectCall(callId);
  return call.messageVisible && call.messageText === text;
}

async function messageRow(callId: string) {
  const [row] = await db.select().from(callMessages).where(eq(callMessages.callId, callId));
  return row;
}

async function callRow(callId: string) {
  const [row] = await db.select().from(calls).where(eq(calls.id, callId));
  return row;
}

describe('start-up', () => {
  test('a meeting already running before the actuator starts gets its security message on start-up', async () => {
    const r = await rig();
    const { meeting, callId, alice, guest } = meetingInProgress(r, 'Running before us');
    await startPolicyWorker(r);
    const { registry } = await startActuator(r);

    await eventually(() => shows(r, callId, 'Security Level 3'), { what: 'Security Level 3 on the running call' });
    assert.equal(r.sim.inspectCall(callId).messagePosition, 'bottom');
    assert.equal(r.sim.inspectCall(callId).messageDuration, 'permanent');
    const call = await callRow(callId);
    assert.equal(call?.node, r.node);
    assert.equal(call?.name, 'Running before us');
    assert.equal(call?.callCorrelator, meeting.callCorrelator);
    const observed = await db
      .select()
      .from(callLegObservations)
      .where(eq(callLegObservations.node, r.node))
      .orderBy(asc(callLegObservations.id));
    assert.deepEqual(
      observed.map((o) => [o.id, o.callId, o.type, o.subType, o.state, o.deactivated]).sort(),
      [
        [alice.callLegId, callId, 'sip', null, 'connected', false],
        [guest.callLegId, callId, 'acano', 'webApp', 'connected', false],
      ].sort(),
    );
    const [decided] = await db.select().from(meetings).where(eq(meetings.meetingKey, meeting.callCorrelator));
    assert.equal(decided?.level, 3);
    assert.equal(decided?.decisiveLegId, guest.callLegId);
    await eventually(async () => (await messageRow(callId))?.status === 'applied', { what: 'desired state applied' });
    assert.ok((await metric(registry, 'cms_reconcile_passes_total', { node: r.node, outcome: 'ok' })) >= 1);
  });

  test('a leg we hold CDRs for keeps its CDR projection: polling reads only its live view', async () => {
    const r = await rig({ cdrs: true });
    await startPolicyWorker(r);
    const meeting = r.sim.startCall({ name: 'Half recorded' });
    const callId = meeting.callId();
    const alice = r.sim.join({ meeting, remoteParty: 'alice@secure.example' });
    await r.sim.waitForCdrsDelivered();
    const recorded = await eventually(async () => {
      const [leg] = await db.select().from(callLegs).where(eq(callLegs.id, alice.callLegId));
      return leg?.callId === callId && (await messageRow(callId))?.level === 1 && leg;
    });
    // The receiver goes away: the guest's join reaches us only through the API.
    r.sim.receiverOutage(true);
    const guest = r.sim.join({ meeting, kind: 'guest', admitted: true });

    await startActuator(r);
    await eventually(() => shows(r, callId, 'Security Level 3'), { what: 'Security Level 3 once the guest is seen' });
    const [aliceNow] = await db.select().from(callLegs).where(eq(callLegs.id, alice.callLegId));
    assert.deepEqual(aliceNow, recorded, 'the CDR projection of the recorded leg is untouched');
    assert.equal(
      (await db.select().from(callLegs).where(eq(callLegs.id, guest.callLegId))).length,
      0,
      'observations never become CDR legs',
    );
    const observed = new Map(
      (await db.select().from(callLegObservations).where(eq(callLegObservations.callId, callId))).map((o) => [o.id, o]),
    );
    // Without the events feed, polling brings the live view of every leg (mutes, layout), into the observation only.
    assert.equal(observed.get(alice.callLegId)?.audioMuted, false, 'the live view of the recorded leg');
    assert.equal(observed.get(guest.callLegId)?.subType, 'webApp');
    assert.equal(observed.get(guest.callLegId)?.state, 'connected');
    const [decided] = await db.select().from(meetings).where(eq(meetings.meetingKey, meeting.callCorrelator));
    assert.equal(decided?.level, 3);
    assert.equal(decided?.decisiveLegId, guest.callLegId);
  });
});

describe('calls that vanished', () => {
  test('after a bridge restart our calls of that node are ended and their meeting cleared', async () => {
    const r = await rig();
    const { meeting, callId } = meetingInProgress(r, 'Lost in a restart');
    await startPolicyWorker(r);
    const { registry } = await startActuator(r);
    await eventually(async () => (await messageRow(callId))?.status === 'applied', { what: 'message written' });

    r.sim.restartBridge(r.node); // a crash: the calls vanish without CDRs
    const requestReconcile = createReconcileRequester(producer, r.prefix, new Set([r.node]), silent);
    cleanups.push(() => requestReconcile.close());
    await requestReconcile(r.node, 'bridgeRestart');

    const call = await eventually(async () => {
      const row = await callRow(callId);
      return row?.endedAt ? row : undefined;
    });
    assert.ok(call.endedAt);
    const decided = await eventually(async () => {
      const [row] = await db.select().from(meetings).where(eq(meetings.meetingKey, meeting.callCorrelator));
      return row?.level === null && row;
    });
    assert.equal(decided.decisiveLegId, null);
    assert.equal((await messageRow(callId))?.status, 'callEnded');
    assert.equal((await db.select().from(callLegObservations).where(eq(callLegObservations.node, r.node))).length, 0);
    assert.equal(await metric(registry, 'cms_reconcile_calls_ended_total', { node: r.node }), 1);
  });
});

describe('re-applying the desired message', () => {
  test('a message someone cleared on CMS is shown again by the next periodic pass', async () => {
    const r = await rig();
    const { callId } = meetingInProgress(r, 'Cleared by hand');
    await startPolicyWorker(r);
    const { registry } = await startActuator(r, { actuator: { reconcileIntervalSeconds: 1 } });
    const first = await eventually(async () => {
      const row = await messageRow(callId);
      return row?.status === 'applied' && row;
    });

    const bridge = r.sim.bridge(r.node);
    const cleared = await fetch(`${bridge.url}/api/v1/calls/${callId}`, {
      method: 'PUT',
      headers: { authorization: basicAuthHeader(bridge), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'messageText=&messageDuration=0',
    });
    assert.equal(cleared.status, 200);
    assert.equal(r.sim.inspectCall(callId).messageVisible, false);

    await eventually(() => shows(r, callId, 'Security Level 3'), { what: 'message shown again' });
    const again = await eventually(async () => {
      const row = await messageRow(callId);
      return row?.status === 'applied' && row.appliedVersion === row.version && row.version > first.version && row;
    });
    assert.equal(again.messageText, 'Security Level 3');
    const applied = await db
      .select()
      .from(cmsWrites)
      .where(and(eq(cmsWrites.callId, callId), eq(cmsWrites.status, 'applied')));
    assert.equal(applied.length, 2);
    assert.ok((await metric(registry, 'cms_reconcile_messages_reapplied_total', { node: r.node })) >= 1);
    assert.ok((await metric(registry, 'cms_reconcile_passes_total', { node: r.node, outcome: 'ok' })) >= 2);
  });
});

describe('pacing', () => {
  test('a pass reads every call and leg once, paced under actuator.readsPerSecond', async () => {
    const READS_PER_SECOND = 10;
    const r = await rig({ pageCap: 4 });
    const crowded = r.sim.startCall({ name: 'crowded' });
    for (let i = 0; i < 5; i++) r.sim.join({ meeting: crowded, remoteParty: `p${i}@corp.example` });
    for (let i = 0; i < 4; i++) r.sim.join({ meeting: r.sim.startCall({ name: `small ${i}` }), remoteParty: `q${i}@corp.example` });
    // 5 calls on 2 pages, 5 call GETs, leg pages (2 for the crowded call, 1 each for the others), 9 leg GETs and
    // (without the events feed, for the live view) 9 participant GETs for their importance.
    const expectedReads = 2 + 5 + 6 + 9 + 9;
    const requests = () => r.sim.inspect().bridges[0]?.counters.apiRequests ?? 0;
    assert.equal(requests(), 0);

    const { registry } = await startActuator(r, { actuator: { readsPerSecond: READS_PER_SECOND } });
    await passes(registry, r.node, 1);
    // Judged once, on the whole pass, from the arrival times CMS saw: any run of reads from the i-th to the j-th
    // spans at least (j - i - 1) spacings. One spacing of slack absorbs the client's own jitter between the paced
    // start of a request and its arrival; a pacer that lets N reads through at the start of each second fails it.
    const spacingMs = 1000 / READS_PER_SECOND;
    const reads = r.sim
      .requestLog({ bridge: r.node })
      // Besides the pass: one GET /system/status (the start-up health probe), unpaced.
      .filter((e) => !e.url.toLowerCase().startsWith('/api/v1/system/status'))
      .map((e) => e.atMs);
    assert.equal(reads.length, expectedReads);
    const tooClose: string[] = [];
    for (let i = 0; i < reads.length; i++) {
      for (let j = i + 1; j < reads.length; j++) {
        const span = (reads[j] as number) - (reads[i] as number);
        if (span < (j - i - 1) * spacingMs) tooClose.push(`reads ${i}..${j} within ${span} ms`);
      }
    }
    assert.deepEqual(
      tooClose,
      [],
      `reads closer than ${spacingMs} ms apart; gaps: ${reads
        .slice(1)
        .map((t, k) => t - (reads[k] as number))
        .join(' ')}`,
    );
    assert.equal(await metric(registry, 'cms_reads_total', { node: r.node }), expectedReads);
    assert.equal(requests(), expectedReads + 1);
    assert.equal(await metric(registry, 'cms_reconcile_calls', { node: r.node }), 5);
    assert.equal((await db.select().from(callLegObservations).where(eq(callLegObservations.node, r.node))).length, 9);
  });
});

describe('sweep', () => {
  test('a pending desired message without a write job is written by the sweep', async () => {
    const r = await rig();
    const callId = r.sim.startCall({ name: 'policy crashed before enqueueing' }).callId();
    const { registry } = await startActuator(r, { tuning: { sweepIntervalMs: 100, sweepMinAgeMs: 1000 } });
    await passes(registry, r.node, 1);

    // What a policy worker that died between its commit and its enqueue leaves behind.
    await db.insert(callMessages).values({
      callId,
      node: r.node,
      meetingKey: callId,
      level: 2,
      messageText: 'Security Level 2',
      messagePosition: 'bottom',
      messageDuration: 'permanent',
      desiredAt: new Date(Date.now() - 60_000).toISOString(),
    });

    await eventually(() => shows(r, callId, 'Security Level 2'), { what: 'written by the sweep' });
    await eventually(async () => (await messageRow(callId))?.status === 'applied');
    assert.equal(await metric(registry, 'cms_sweep_enqueued_total', { node: r.node }), 1);
  });

  test('a call of unknown node is found by asking each node once, then written there', async () => {
    const r = await rig({ bridges: 2 });
    const [a, b] = r.nodes as [string, string];
    const { registry } = await startActuator(r, { tuning: { sweepIntervalMs: 100 } });
    await passes(registry, a, 1);
    await passes(registry, b, 1);
    // Started after the start-up passes, so only asking can place it (a later pass would list it too).
    const hosted = r.sim.startCall({ name: 'placed by asking', bridge: b }).callId();
    const nowhere = randomUUID();

    // What the policy worker leaves for calls whose CDRs came without a node it could map.
    for (const callId of [hosted, nowhere]) {
      await db.insert(calls).values({ id: callId, name: 'unplaced' });
      await db.insert(callMessages).values({
        callId,
        node: null,
        meetingKey: callId,
        level: 2,
        messageText: 'Security Level 2',
        messagePosition: 'bottom',
        messageDuration: 'permanent',
        status: 'unplaced',
      });
    }
    cleanups.push(async () => {
      await db.delete(callMessages).where(inArray(callMessages.callId, [hosted, nowhere]));
    });

    await eventually(() => shows(r, hosted, 'Security Level 2'), { what: 'written on the node that hosts the call' });
    assert.equal((await callRow(hosted))?.node, b);
    const placed = await eventually(async () => {
      const row = await messageRow(hosted);
      return row?.status === 'applied' && row;
    });
    assert.equal(placed.node, b);
    const answers = async (callId: string) => producer.hgetall(placementKey(r.prefix, callId));
    await eventually(async () => Object.keys(await answers(nowhere)).length === 2, { what: 'every node asked about the unknown call' });
    assert.deepEqual(await answers(hosted), { [a]: 'absent', [b]: 'found' });
    assert.deepEqual(await answers(nowhere), { [a]: 'absent', [b]: 'absent' });
    assert.equal((await messageRow(nowhere))?.status, 'unplaced');

    // Remembered: later sweeps ask nobody again.
    const before = r.sim.inspect().bridges.map((x) => x.counters.apiRequests);
    const sweeps = await metric(registry, 'cms_sweeps_total');
    await eventually(async () => (await metric(registry, 'cms_sweeps_total')) >= sweeps + 3, { what: 'three more sweeps' });
    assert.deepEqual(
      r.sim.inspect().bridges.map((x) => x.counters.apiRequests),
      before,
    );
    assert.equal(await metric(registry, 'cms_placement_lookups_total', { node: a, outcome: 'absent' }), 2);
    assert.equal(await metric(registry, 'cms_placement_lookups_total', { node: b, outcome: 'found' }), 1);
    assert.equal(await metric(registry, 'cms_placement_lookups_total', { node: b, outcome: 'absent' }), 1);
  });
});

describe('requests the actuator cannot serve', () => {
  test('a node that refuses our credentials is not reconciled until it accepts us again, then at once', async () => {
    const r = await rig();
    const { callId } = meetingInProgress(r, 'behind a changed password');
    // The node's URL first leads to a Call Bridge that does not know our password, then to the real one.
    const refusing = await startSimulator({ controlPort: null, bridges: [{ name: r.node, password: 'someone-changed-it' }] });
    cleanups.push(() => refusing.stop());
    const proxy = await startTcpProxy('127.0.0.1', refusing.bridge(r.node).port);
    cleanups.push(() => proxy.close());
    const { registry } = await startActuator(r, { url: `http://127.0.0.1:${proxy.port}` });
    await passes(registry, r.node, 1, 'held');
    assert.equal(await metric(registry, 'cms_reconcile_passes_total', { node: r.node, outcome: 'ok' }), 0);
    assert.equal((await db.select().from(callLegObservations).where(eq(callLegObservations.node, r.node))).length, 0);

    proxy.retarget('127.0.0.1', r.sim.bridge(r.node).port);
    await passes(registry, r.node, 1);
    assert.equal((await db.select().from(callLegObservations).where(eq(callLegObservations.callId, callId))).length, 2);
  });

  test('a reconciliation request for a node not in cms.nodes is completed without a pass', async () => {
    const r = await rig();
    const { registry } = await startActuator(r);
    await passes(registry, r.node, 1);
    const queue = new Queue<CmsReconcileJob>(CMS_RECONCILE_QUEUE, { connection: producer, prefix: r.prefix });
    cleanups.push(() => queue.close());
    const job = await queue.add('reconcile', { node: 'not-configured', reason: 'manual' });

    await eventually(async () => (await queue.getJobState(job.id as string)) === 'completed', { what: 'job completed' });
    assert.equal(await metric(registry, 'cms_reconcile_passes_total', { node: 'not-configured', outcome: 'unknownNode' }), 1);
  });
});
