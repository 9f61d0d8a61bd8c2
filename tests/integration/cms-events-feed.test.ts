import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type EventsStats, type Simulator, type SimulatorOptions, startSimulator } from '@cms/cms-sim';
import { type Config, loadConfig } from '@cms/config';
import { callLegObservations, callLegs, calls, cmsNodeStatus, meetings } from '@cms/db';
import { createLogger, type Registry } from '@cms/observability';
import { eq, inArray } from 'drizzle-orm';
import { buildIngest } from '../../services/cdr-ingest/src/app.ts';
import type { ActuatorService } from '../../services/cms-actuator/src/app.ts';
import type { NodeFeedLimits } from '../../services/cms-actuator/src/events/node-feed.ts';
import { observeNode } from '../../services/cms-actuator/src/reconcile/observe-node.ts';
import { databaseNow, stalestFirst, storeSnapshot } from '../../services/cms-actuator/src/reconcile/snapshot-store.ts';
import { buildPolicyWorker } from '../../services/policy-worker/src/app.ts';
import { lobbyLegs } from '../../services/records-api/src/operator-actions/targets.ts';
import { actuatorTestBackends, cleanupsAfterEachTest, FAST_ACTUATOR_TUNING, startTestActuator } from '../helpers/actuator.ts';
import { eventually } from '../helpers/infra.ts';

/**
 * The actuator's CMS events feed against the simulator (docs/cms-interfaces.md §3): token, subscriptions,
 * acknowledgements, limits, reconnect and resync, token renewal, and the polling fallback with its mode.
 */

const PASSWORD = 'events-feed-test-pass';
const INGEST_TOKEN = 'events-feed-test-ingest-token';
const silent = createLogger('cms-events-feed-test', 'silent');
const FAST_FEED: Partial<NodeFeedLimits> = { reconnectBaseMs: 50, reconnectMaxMs: 200 };

const { db, redisUrl, basePrefix } = await actuatorTestBackends();
let rigNo = 0;
/** Run after each test, last first: every rig stops what it started. */
const cleanups = cleanupsAfterEachTest();

interface Rig {
  sim: Simulator;
  nodes: string[];
  node: string;
  actuator: ActuatorService;
  registry: Registry;
}

/** A node without its events feed (polling, a pass a second), with the policy worker and CDRs sent as CMS does. */
function pollingRigWithCdrs() {
  return rig({
    actuator: { reconcileIntervalSeconds: 1 },
    beforeStart: (sim) => sim.setEventsEnabled(false),
    policy: true,
    cdrs: true,
    sim: { cdr: { flushDelayMs: 5, resendInitialMs: 20, resendMaxMs: 100 } },
  });
}

async function rig(
  options: {
    bridges?: number;
    sim?: Partial<SimulatorOptions>;
    url?: string;
    feed?: Partial<NodeFeedLimits>;
    actuator?: Record<string, unknown>;
    beforeStart?: (sim: Simulator) => void;
    /** Also run the policy worker (in-process) on the same configuration. */
    policy?: boolean;
    caFile?: string;
    /** The bridges post CDRs to an in-process cdr-ingest (the policy worker stores them). */
    cdrs?: boolean;
  } = {},
): Promise<Rig> {
  const n = ++rigNo;
  const nodes = Array.from({ length: options.bridges ?? 1 }, (_, i) => `ev${n}-${String.fromCharCode(97 + i)}`);
  const sim = await startSimulator({
    controlPort: null,
    bridges: nodes.map((name) => ({ name, password: PASSWORD })),
    ...options.sim,
  });
  cleanups.push(() => sim.stop());
  options.beforeStart?.(sim);
  const config: Config = loadConfig({
    env: {},
    overrides: {
      log: { level: 'silent' },
      redis: { url: redisUrl },
      queue: { prefix: `${basePrefix}-${n}` },
      actuator: { reconcileIntervalSeconds: 0, readsPerSecond: 200, ...options.actuator },
      policy: { internalDomains: ['corp.example'] },
      cms: {
        nodes: nodes.map((name, i) => ({
          name,
          url: (i === 0 && options.url) || sim.bridge(name).url,
          username: 'admin',
          password: PASSWORD,
          ...(options.caFile ? { caFile: options.caFile } : {}),
        })),
      },
    },
  });
  if (options.cdrs) {
    const ingestConfig = loadConfig({
      env: {},
      overrides: {
        log: { level: 'silent' },
        redis: { url: redisUrl },
        queue: { prefix: config.queue.prefix },
        ingest: { token: INGEST_TOKEN },
      },
    });
    const ingest = await buildIngest({ config: ingestConfig, log: silent });
    await ingest.app.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => ingest.close());
    const { port } = ingest.app.server.address() as AddressInfo;
    sim.setCdrReceivers([`http://127.0.0.1:${port}/cdr/{bridge}?token=${INGEST_TOKEN}`]);
  }
  if (options.policy) {
    const worker = await buildPolicyWorker({ config, db, log: silent });
    cleanups.push(() => worker.close());
  }
  const { service: actuator, registry } = await startTestActuator(config, {
    db,
    tuning: FAST_ACTUATOR_TUNING,
    eventsLimits: { ...FAST_FEED, ...options.feed },
  });
  cleanups.push(() => actuator.close());
  return { sim, nodes, node: nodes[0] as string, actuator, registry };
}

async function observations(callIds: string[]) {
  return db.select().from(callLegObservations).where(inArray(callLegObservations.callId, callIds));
}

async function row(participantId: string) {
  const [found] = await db.select().from(callLegObservations).where(eq(callLegObservations.participantId, participantId));
  return found;
}

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value)).reduce((sum, v) => sum + v.value, 0);
}

async function readyz(
  r: Rig,
): Promise<{ status: string; cmsNodes: Record<string, { mode: string; reason: string | null; connections: number }> }> {
  const res = await r.actuator.app.inject({ method: 'GET', url: '/readyz' });
  return res.json();
}

async function modeRow(node: string) {
  const [found] = await db.select().from(cmsNodeStatus).where(eq(cmsNodeStatus.node, node));
  return found;
}

/** The node is in `mode` everywhere it is shown: /readyz, the gauge and cms_node_status. */
async function inMode(r: Rig, node: string, mode: string): Promise<void> {
  await eventually(
    async () =>
      (await readyz(r)).cmsNodes[node]?.mode === mode &&
      (await metric(r.registry, 'cms_actuator_node_mode', { node, mode })) === 1 &&
      (await modeRow(node))?.mode === mode,
    { what: `${node} in ${mode} mode` },
  );
}

/** The start-up reconciliation pass is over: every read and end from here on is the test's. */
async function startupPassDone(r: Rig): Promise<void> {
  await eventually(async () => (await metric(r.registry, 'cms_reconcile_passes_total', { node: r.node })) >= 1, {
    what: 'the start-up pass',
  });
}

function connections(r: Rig, node: string): EventsStats['connections'] {
  return r.sim.eventsStats(node)[0]?.connections ?? [];
}

describe('events feed', () => {
  test('token, calls and roster subscriptions, every message acknowledged: joins, mutes, layouts, guests and leaves land in call_leg_observations', async () => {
    const r = await rig();
    await inMode(r, r.node, 'events');
    assert.equal((await modeRow(r.node))?.health, 'ok');
    assert.ok(
      r.sim.requestLog({ bridge: r.node }).some((e) => e.method === 'POST' && e.url === '/api/v1/authTokens'),
      'a token from POST /api/v1/authTokens',
    );
    const meeting = r.sim.startCall({ name: 'Live view', bridges: [r.node] });
    const callId = meeting.callId(r.node);
    const alice = r.sim.join({ meeting, remoteParty: 'alice@corp.example', displayName: 'Alice' });
    await eventually(async () => (await row(alice.participantId))?.state === 'connected', { what: 'alice from the roster' });
    const a = await row(alice.participantId);
    assert.equal(a?.source, 'events');
    assert.equal(a?.name, 'Alice');
    assert.equal(a?.remoteParty, 'alice@corp.example');
    assert.equal(a?.callId, callId);
    assert.equal(a?.node, r.node);
    assert.equal(a?.activator, true);
    assert.equal(a?.deactivated, null, 'the roster has no lobby element (CDRs and polling bring it)');
    assert.equal(a?.audioMuted, false);
    // The calls subscription made the call known with its meeting.
    const [call] = await db.select().from(calls).where(eq(calls.id, callId));
    assert.equal(call?.callCorrelator, meeting.callCorrelator);
    assert.equal(call?.name, 'Live view');

    r.sim.updateCallLeg(alice.callLegId, { rxAudioMute: true });
    await eventually(async () => (await row(alice.participantId))?.audioMuted === true, { what: 'mute' });
    r.sim.updateCallLeg(alice.callLegId, { chosenLayout: 'speakerOnly' });
    await eventually(async () => (await row(alice.participantId))?.layout === 'speakerOnly', { what: 'layout' });
    assert.equal((await row(alice.participantId))?.audioMuted, true, 'an update that carries only the layout keeps the mute');

    // A guest (who needs activation) is in the roster, not an activator.
    r.sim.updateCall(callId, { locked: true });
    const guest = r.sim.join({ meeting, kind: 'guest', displayName: 'Guest' });
    assert.equal(guest.deactivated, true);
    await eventually(async () => (await row(guest.participantId))?.activator === false, { what: 'the guest, not an activator' });
    r.sim.admit(guest.participantId);

    r.sim.leave(alice.callLegId);
    await eventually(async () => (await row(alice.participantId)) === undefined, { what: 'alice gone' });

    // Every message CMS sent was acknowledged: nothing is held back waiting for an ack.
    await eventually(
      () => {
        const [c] = connections(r, r.node);
        return c !== undefined && c.awaitingAck === null && c.pendingUpdates === 0 && c.acknowledged === c.sent && c.sent > 5;
      },
      { what: 'every message acknowledged' },
    );
    assert.equal(connections(r, r.node).length, 1);
    assert.equal(connections(r, r.node)[0]?.subscriptions, 2, 'calls + one roster');
    r.sim.endCall(meeting);
    await eventually(async () => (await observations([callId])).length === 0, { what: 'rows of the ended call gone' });
  });

  test('more than 100 calls: rosters spread over connections, each within 100 subscriptions', async () => {
    const r = await rig();
    await inMode(r, r.node, 'events');
    const participants: string[] = [];
    const started: ReturnType<Simulator['startCall']>[] = [];
    for (let i = 0; i < 120; i++) {
      const meeting = r.sim.startCall({ bridges: [r.node] });
      started.push(meeting);
      participants.push(r.sim.join({ meeting, remoteParty: `user${i}@corp.example` }).participantId);
    }
    await eventually(
      async () =>
        (await db.select().from(callLegObservations).where(inArray(callLegObservations.participantId, participants))).length === 120,
      { what: 'all 120 participants', timeoutMs: 60_000 },
    );
    const open = connections(r, r.node);
    assert.equal(open.length, 2);
    assert.ok(
      open.every((c) => c.subscriptions <= 100),
      JSON.stringify(open),
    );
    assert.equal(
      open.reduce((n, c) => n + c.subscriptions, 0),
      121,
      'calls and 120 rosters',
    );
    // Back under one connection's worth: the second connection is given up.
    for (const meeting of started.slice(90)) r.sim.endCall(meeting);
    await eventually(() => connections(r, r.node).length === 1 && connections(r, r.node)[0]?.subscriptions === 91, {
      what: 'one connection with calls and 90 rosters',
    });
  });

  test('a dropped feed reconnects and resyncs: changes made while it was away are all there', async () => {
    // Slow reads keep the fallback pass from finishing first: what is checked is the feed's own resync.
    const r = await rig({ actuator: { readsPerSecond: 1 } });
    await inMode(r, r.node, 'events');
    const meeting = r.sim.startCall({ bridges: [r.node] });
    const alice = r.sim.join({ meeting, remoteParty: 'alice@corp.example' });
    const bob = r.sim.join({ meeting, remoteParty: 'bob@corp.example' });
    await eventually(async () => (await row(alice.participantId)) && (await row(bob.participantId)), { what: 'both in' });

    r.sim.setEventsEnabled(false, { bridge: r.node });
    await inMode(r, r.node, 'polling');
    r.sim.leave(bob.callLegId);
    const carol = r.sim.join({ meeting, remoteParty: 'carol@corp.example' });
    r.sim.updateCallLeg(alice.callLegId, { rxVideoMute: true });
    r.sim.setEventsEnabled(true, { bridge: r.node });

    await inMode(r, r.node, 'events');
    await eventually(
      async () => {
        const c = await row(carol.participantId);
        const a = await row(alice.participantId);
        return c?.source === 'events' && a?.videoMuted === true && (await row(bob.participantId)) === undefined;
      },
      { what: 'carol in, alice video-muted, bob gone' },
    );

    // A drop without a close frame, with a change right behind it.
    r.sim.dropEventsConnections({ bridge: r.node });
    r.sim.updateCallLeg(carol.callLegId, { rxAudioMute: true });
    await eventually(async () => (await row(carol.participantId))?.audioMuted === true, { what: 'the change made at the drop' });
    assert.ok((await metric(r.registry, 'cms_events_connects_total', { node: r.node })) >= 3);
  });

  test('tokens are renewed before they expire: a reconnect long after the first token still connects', async () => {
    const r = await rig({ sim: { events: { tokenTtlMs: 600 } }, feed: { tokenRefreshMs: 200 } });
    await inMode(r, r.node, 'events');
    const tokens = () => r.sim.requestLog({ bridge: r.node }).filter((e) => e.url === '/api/v1/authTokens').length;
    // Well past the first token's life.
    await eventually(() => tokens() >= 5, { what: 'tokens renewed' });
    // Every token CMS issued is one the actuator asked for (a request may still be on its way back).
    await eventually(() => r.actuator.events.tokensIssued(r.node) >= 5, { what: 'the actuator holding renewed tokens' });
    r.sim.dropEventsConnections({ bridge: r.node });
    await eventually(async () => (await metric(r.registry, 'cms_events_connects_total', { node: r.node })) >= 2, { what: 'reconnected' });
    const meeting = r.sim.startCall({ bridges: [r.node] });
    const dave = r.sim.join({ meeting, remoteParty: 'dave@corp.example' });
    await eventually(async () => (await row(dave.participantId))?.source === 'events', { what: 'dave over the reconnected feed' });
    await inMode(r, r.node, 'events');
  });

  test('where the feed is refused, polling carries on alone and the mode says so; when it comes back, the mode returns to events', async () => {
    const r = await rig({
      actuator: { reconcileIntervalSeconds: 1 },
      beforeStart: (sim) => sim.setEventsEnabled(false),
    });
    await inMode(r, r.node, 'polling');
    const ready = await eventually(
      async () => {
        const body = await readyz(r);
        return /404/.test(body.cmsNodes[r.node]?.reason ?? '') && body;
      },
      { what: 'the 404 as the reason' },
    );
    assert.equal(ready.status, 'ready', 'a node without the feed is still served');
    await eventually(async () => (await modeRow(r.node))?.detail?.reason === ready.cmsNodes[r.node]?.reason, {
      what: 'the reason in cms_node_status',
    });
    assert.equal(await metric(r.registry, 'cms_actuator_node_mode', { node: r.node, mode: 'events' }), 0);

    const meeting = r.sim.startCall({ bridges: [r.node] });
    const erin = r.sim.join({ meeting, remoteParty: 'erin@corp.example', displayName: 'Erin' });
    r.sim.updateCallLeg(erin.callLegId, { rxAudioMute: true });
    await eventually(
      async () => {
        const [o] = await db.select().from(callLegObservations).where(eq(callLegObservations.id, erin.callLegId));
        return o?.source === 'polling' && o.audioMuted === true && o.participantId === erin.participantId;
      },
      { what: 'erin from polling' },
    );

    r.sim.setEventsEnabled(true, { bridge: r.node });
    await inMode(r, r.node, 'events');
    r.sim.updateCallLeg(erin.callLegId, { chosenLayout: 'stacked' });
    await eventually(
      async () => {
        const [o] = await db.select().from(callLegObservations).where(eq(callLegObservations.id, erin.callLegId));
        return o?.source === 'events' && o.layout === 'stacked' && o.audioMuted === true;
      },
      { what: 'erin over the feed, in the same row' },
    );
    assert.equal((await db.select().from(callLegObservations).where(eq(callLegObservations.participantId, erin.participantId))).length, 1);
  });

  test('without the feed, polling fills the live view of legs CDRs already named too: mutes, layout, importance, presenter', async () => {
    const r = await pollingRigWithCdrs();
    await inMode(r, r.node, 'polling');
    const meeting = r.sim.startCall({ bridges: [r.node] });
    const ivan = r.sim.join({ meeting, remoteParty: 'ivan@corp.example', displayName: 'Ivan' });
    await eventually(async () => (await db.select().from(callLegs).where(eq(callLegs.id, ivan.callLegId))).length === 1, {
      what: "ivan's CDR leg",
    });
    // Changed once his CDRs named him: only a read of the known leg (and its participant) can show these.
    r.sim.updateCallLeg(ivan.callLegId, { rxAudioMute: true, chosenLayout: 'stacked' });
    r.sim.updateParticipant(ivan.participantId, { importance: 7 });
    r.sim.shareContent(ivan.callLegId);
    const live = await eventually(
      async () => {
        const [o] = await db.select().from(callLegObservations).where(eq(callLegObservations.id, ivan.callLegId));
        return o?.audioMuted === true && o.layout === 'stacked' && o.importance === 7 && o.presenter === true && o;
      },
      { what: "ivan's mute, layout, importance and content sharing from polling" },
    );
    assert.equal(live.source, 'polling');
    assert.equal(live.participantId, ivan.participantId);
  });

  test('polling reads the live view of known legs within its budget, the stalest first, so passes take turns', async () => {
    const r = await rig({ beforeStart: (sim) => sim.setEventsEnabled(false) });
    await inMode(r, r.node, 'polling');
    await startupPassDone(r);
    const meeting = r.sim.startCall({ bridges: [r.node] });
    const joined = ['kim', 'lee', 'max'].map((name) => r.sim.join({ meeting, remoteParty: `${name}@corp.example` }));
    const reconciler = r.actuator.reconcilers.get(r.node);
    assert.ok(reconciler);
    // As if CDRs had named all three: only the budget lets a pass read them.
    const lookups = {
      activeCallIds: async () => [],
      knownLegIds: async (ids: string[]) => new Map(ids.map((id) => [id, joined.find((j) => j.callLegId === id)?.participantId ?? null])),
      stalestFirst: (ids: string[]) => stalestFirst(db, ids),
    };
    const readLegs: string[] = [];
    const reads = () => r.sim.requestLog({ bridge: r.node }).filter((e) => e.method === 'GET' && e.url.startsWith('/api/v1/')).length;
    for (let pass = 0; pass < 3; pass++) {
      const readsBefore = reads();
      // One known leg and its participant per pass.
      const snapshot = await observeNode(reconciler.client, lookups, { knownLegs: 1, importance: true });
      const read = snapshot.legs.filter((l) => l.read).map((l) => l.id);
      assert.equal(read.length, 1, `pass ${pass}: one leg read`);
      assert.equal(snapshot.liveReads, 2);
      // The call list, the call, its legs, then one leg and one participant.
      assert.equal(reads() - readsBefore, 5);
      readLegs.push(...read);
      await storeSnapshot(db, r.node, snapshot, { startedAt: await databaseNow(db), eventsLive: false });
    }
    assert.deepEqual([...readLegs].sort(), joined.map((j) => j.callLegId).sort(), 'each leg read once in three passes');
    // With no budget (the feed brings the live view), no known leg is read.
    const none = await observeNode(reconciler.client, lookups, { knownLegs: 0, importance: false });
    assert.equal(none.legs.filter((l) => l.read).length, 0);
  });

  test('a call the feed sees removed is ended at once, with nothing but the feed (no CDR, no reconciliation pass)', async () => {
    const r = await rig();
    await inMode(r, r.node, 'events');
    await startupPassDone(r);
    const meeting = r.sim.startCall({ name: 'Ends live', bridges: [r.node] });
    const callId = meeting.callId(r.node);
    const jo = r.sim.join({ meeting, remoteParty: 'jo@corp.example' });
    await eventually(async () => (await row(jo.participantId))?.state === 'connected', { what: 'jo from the roster' });
    const callRow = async () => (await db.select().from(calls).where(eq(calls.id, callId)))[0];
    assert.equal((await callRow())?.endedAt, null);
    const passesBefore = await metric(r.registry, 'cms_reconcile_passes_total', { node: r.node });

    r.sim.endCall(meeting);
    await eventually(async () => ((await callRow())?.endedAt ?? null) !== null, { what: 'the call ended from the calls subscription' });
    assert.equal((await observations([callId])).length, 0, 'its live rows gone');
    assert.equal(await metric(r.registry, 'cms_reconcile_passes_total', { node: r.node }), passesBefore, 'no pass ended it');
  });

  test('a lobby flag polling read does not outlive the CDR that admitted the guest once the feed is back', async () => {
    const r = await pollingRigWithCdrs();
    await inMode(r, r.node, 'polling');
    const meeting = r.sim.startCall({ bridges: [r.node] });
    const callId = meeting.callId(r.node);
    r.sim.updateCall(callId, { locked: true });
    const guest = r.sim.join({ meeting, kind: 'guest', displayName: 'Waiting guest' });
    assert.equal(guest.deactivated, true);
    const observed = async () => (await db.select().from(callLegObservations).where(eq(callLegObservations.id, guest.callLegId)))[0];
    await eventually(async () => (await observed())?.deactivated === true, { what: 'polling: the guest in the lobby' });
    const waiting = async () => (await lobbyLegs(db)).some((l) => l.call_leg_id === guest.callLegId);
    assert.equal(await waiting(), true);

    r.sim.setEventsEnabled(true, { bridge: r.node });
    await inMode(r, r.node, 'events');
    r.sim.admit(guest.participantId);
    await eventually(async () => (await db.select().from(callLegs).where(eq(callLegs.id, guest.callLegId)))[0]?.deactivated === false, {
      what: 'the admission from the CDRs',
    });
    // A roster change makes the row newer than the CDR; the roster says nothing of the lobby.
    r.sim.updateCallLeg(guest.callLegId, { rxAudioMute: true });
    await eventually(async () => (await observed())?.audioMuted === true && (await observed())?.source === 'events', { what: 'the mute' });
    assert.equal(await waiting(), false, 'the admitted guest is not listed as waiting');
    assert.equal((await observed())?.deactivated, null);
  });

  test('a roster change that moves the level is decided again by the policy worker, without any CDR', async () => {
    const r = await rig({ policy: true });
    await inMode(r, r.node, 'events');
    const meeting = r.sim.startCall({ bridges: [r.node] });
    const level = async () => (await db.select().from(meetings).where(eq(meetings.meetingKey, meeting.callCorrelator)))[0]?.level;
    r.sim.join({ meeting, remoteParty: 'alice@corp.example' });
    await eventually(async () => (await level()) === 2, { what: 'level 2 (internal) from the roster' });
    const guest = r.sim.join({ meeting, kind: 'guest', admitted: true });
    await eventually(async () => (await level()) === 3, { what: 'level 3 once a guest is in' });
    r.sim.leave(guest.callLegId);
    await eventually(async () => (await level()) === 2, { what: 'level 2 again once the guest left' });
  });

  test('a participant who left counts no more as soon as the roster says so, before its callLegEnd CDR arrives', async () => {
    const r = await rig({ policy: true, cdrs: true, sim: { cdr: { flushDelayMs: 5, resendInitialMs: 20, resendMaxMs: 100 } } });
    await inMode(r, r.node, 'events');
    const meeting = r.sim.startCall({ bridges: [r.node] });
    const level = async () => (await db.select().from(meetings).where(eq(meetings.meetingKey, meeting.callCorrelator)))[0]?.level;
    r.sim.join({ meeting, remoteParty: 'alice@corp.example' });
    const guest = r.sim.join({ meeting, kind: 'guest', admitted: true });
    await eventually(async () => (await level()) === 3, { what: 'level 3 with the guest in' });
    await eventually(async () => (await db.select().from(callLegs).where(eq(callLegs.id, guest.callLegId))).length === 1, {
      what: "the guest's CDR leg",
    });

    // CDRs stop reaching us: only the feed can tell that the guest left.
    r.sim.receiverOutage(true);
    r.sim.leave(guest.callLegId);
    await eventually(async () => (await level()) === 2, { what: 'level 2 from the roster alone' });
    const [leg] = await db.select().from(callLegs).where(eq(callLegs.id, guest.callLegId));
    assert.equal(leg?.endedAt, null, 'no callLegEnd yet');
    assert.equal((await db.select().from(callLegObservations).where(eq(callLegObservations.id, guest.callLegId)))[0]?.state, 'left');

    r.sim.receiverOutage(false);
    await eventually(async () => (await db.select().from(callLegs).where(eq(callLegs.id, guest.callLegId)))[0]?.endedAt, {
      what: 'the callLegEnd delivered',
    });
    assert.equal(await level(), 2, 'both agree');
  });

  test('over TLS the feed verifies the bridge with the node caFile, as the API client does', async () => {
    const simTls = join(import.meta.dirname, '../../tools/cms-sim/fixtures/tls');
    const tls = { keyFile: `${simTls}/server-key.pem`, certFile: `${simTls}/server-cert.pem` };
    const trusted = await rig({ sim: { tls }, caFile: `${simTls}/ca.pem` });
    assert.match(trusted.sim.bridge(trusted.node).url, /^https:/);
    await inMode(trusted, trusted.node, 'events');
    const meeting = trusted.sim.startCall({ bridges: [trusted.node] });
    const henry = trusted.sim.join({ meeting, remoteParty: 'henry@corp.example' });
    await eventually(async () => (await row(henry.participantId))?.source === 'events', { what: 'henry over wss' });

    // A CA that did not sign the bridge's certificate: no token, no feed.
    const untrusted = await rig({ sim: { tls }, caFile: join(import.meta.dirname, '../fixtures/tls/ca.pem') });
    await inMode(untrusted, untrusted.node, 'unreachable');
    assert.equal(connections(untrusted, untrusted.node).length, 0);
  });

  test('a node whose API cannot be reached is unreachable', async () => {
    const r = await rig({ url: 'http://127.0.0.1:9' });
    await inMode(r, r.node, 'unreachable');
    await eventually(async () => (await modeRow(r.node))?.health === 'unreachable', { what: 'write health in cms_node_status' });
  });

  test('two bridges: calls on both, one roster per meeting on a bridge that hosts it, moved when that bridge deactivates it', async () => {
    const r = await rig({ bridges: 2 });
    const [a, b] = r.nodes as [string, string];
    await inMode(r, a, 'events');
    await inMode(r, b, 'events');
    const meeting = r.sim.startCall({ bridges: [a, b] });
    const onA = r.sim.join({ meeting, bridge: a, remoteParty: 'frank@corp.example' });
    const onB = r.sim.join({ meeting, bridge: b, remoteParty: 'gina@corp.example' });
    await eventually(async () => (await row(onA.participantId)) && (await row(onB.participantId)), { what: 'both participants' });
    const rosters = () => [a, b].map((node) => connections(r, node).reduce((n, c) => n + c.subscriptions, 0));
    // calls on each bridge, and the one roster on the first.
    assert.deepEqual(rosters(), [2, 1]);

    // The first bridge's last participant leaves, so its instance ends: CMS deactivates the roster there and the
    // second bridge takes it.
    r.sim.leave(onA.callLegId);
    await eventually(() => rosters()[0] === 1 && rosters()[1] === 2, { what: 'roster moved to the second bridge' });
    r.sim.updateCallLeg(onB.callLegId, { rxAudioMute: true });
    await eventually(async () => (await row(onB.participantId))?.audioMuted === true, { what: 'gina muted, seen on the second bridge' });
  });
});
