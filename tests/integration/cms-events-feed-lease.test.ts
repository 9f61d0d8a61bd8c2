import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { type Config, loadConfig } from '@cms/config';
import { callLegObservations, cmsNodeStatus } from '@cms/db';
import type { Registry } from '@cms/observability';
import { eq } from 'drizzle-orm';
import type { ActuatorService } from '../../services/cms-actuator/src/app.ts';
import type { NodeFeedView } from '../../services/cms-actuator/src/events/events-feed.ts';
import { actuatorTestBackends, cleanupsAfterEachTest, FAST_ACTUATOR_TUNING, startTestActuator } from '../helpers/actuator.ts';
import { eventually } from '../helpers/infra.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

/**
 * Two actuator replicas on one Redis follow each CMS node's events feed one at a time (events/feed-lease.ts): one
 * holds the node's lease and opens the feed's connections, the other opens none and reports the holder's mode; a
 * holder that can no longer renew stops its feed before the other takes the node over; one that closes releases
 * the lease at once.
 */

const PASSWORD = 'feed-lease-test-pass';
const { db, redisUrl, basePrefix } = await actuatorTestBackends();
const cleanups = cleanupsAfterEachTest();
let rigNo = 0;

interface Replica {
  actuator: ActuatorService;
  registry: Registry;
  /** Closes the actuator once (the test's cleanup then does nothing more). */
  close(): Promise<void>;
}

async function simulator(bridges: number): Promise<{ sim: Simulator; nodes: string[]; prefix: string }> {
  const n = ++rigNo;
  const nodes = Array.from({ length: bridges }, (_, i) => `lease${n}-${String.fromCharCode(97 + i)}`);
  const sim = await startSimulator({ controlPort: null, bridges: nodes.map((name) => ({ name, password: PASSWORD })) });
  cleanups.push(() => sim.stop());
  // A hash-tagged prefix, as on a Redis Cluster: the lease's key must live under it like every other key.
  return { sim, nodes, prefix: `{${basePrefix}-${n}}` };
}

async function replica(sim: Simulator, nodes: string[], options: { prefix: string; redisUrl?: string; leaseMs: number }): Promise<Replica> {
  const config: Config = loadConfig({
    env: {},
    overrides: {
      log: { level: 'silent' },
      redis: { url: options.redisUrl ?? redisUrl },
      queue: { prefix: options.prefix },
      actuator: { reconcileIntervalSeconds: 0, readsPerSecond: 200 },
      cms: { nodes: nodes.map((name) => ({ name, url: sim.bridge(name).url, username: 'admin', password: PASSWORD })) },
    },
  });
  const { service: actuator, registry } = await startTestActuator(config, {
    db,
    tuning: FAST_ACTUATOR_TUNING,
    eventsLimits: { reconnectBaseMs: 50, reconnectMaxMs: 200, leaseMs: options.leaseMs },
  });
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= actuator.close();
    return closed;
  };
  cleanups.push(close);
  return { actuator, registry, close };
}

/** What the replica's /readyz shows of the node (read from the service: /readyz waits on Redis's ping when it is cut). */
async function view(r: Replica, node: string): Promise<NodeFeedView | undefined> {
  return r.actuator.events.view()[node];
}

async function readyzView(r: Replica, node: string): Promise<NodeFeedView | undefined> {
  const res = await r.actuator.app.inject({ method: 'GET', url: '/readyz' });
  return (res.json() as { cmsNodes: Record<string, NodeFeedView> }).cmsNodes[node];
}

async function metric(r: Replica, name: string, labels: Record<string, string>): Promise<number> {
  const values = (await r.registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value)).reduce((sum, v) => sum + v.value, 0);
}

async function modeRow(node: string) {
  const [found] = await db.select().from(cmsNodeStatus).where(eq(cmsNodeStatus.node, node));
  return found;
}

function stats(sim: Simulator, node: string) {
  const s = sim.eventsStats(node)[0];
  assert.ok(s, `events stats of ${node}`);
  return s;
}

/** `holder` follows the node's feed, live; `other` opens nothing and reports events mode, naming the holder. */
async function followedBy(holder: Replica, other: Replica, node: string): Promise<void> {
  await eventually(
    async () => {
      const [h, o] = [await view(holder, node), await view(other, node)];
      return (
        h?.followsFeed === true &&
        h.mode === 'events' &&
        h.connections === 1 &&
        o?.followsFeed === false &&
        o.connections === 0 &&
        o.mode === 'events' &&
        o.feedReplica === holder.actuator.events.replica &&
        (await metric(other, 'cms_actuator_node_mode', { node, mode: 'events' })) === 1 &&
        (await modeRow(node))?.mode === 'events'
      );
    },
    { what: `${node} followed by ${holder.actuator.events.replica} alone` },
  );
  assert.match(
    (await readyzView(other, node))?.reason ?? '',
    new RegExp(`followed by replica ${holder.actuator.events.replica.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
  );
}

describe('events feed lease: one replica follows each node', () => {
  test('two replicas, two nodes: one feed connection per node, rosters stored by its holder only, the other reports the holder’s mode', async () => {
    const { sim, nodes, prefix } = await simulator(2);
    const a = await replica(sim, nodes, { prefix, leaseMs: 1500 });
    const b = await replica(sim, nodes, { prefix, leaseMs: 1500 });
    for (const node of nodes) {
      // Whichever replica took the node's lease first follows it.
      await eventually(async () => (await view(a, node))?.followsFeed || (await view(b, node))?.followsFeed, {
        what: `a replica following ${node}`,
      });
      const [holder, other] = (await view(a, node))?.followsFeed ? [a, b] : [b, a];
      await followedBy(holder, other, node);
      const s = stats(sim, node);
      assert.equal(s.connections.length, 1, `${node}: one open events connection`);
      assert.equal(s.acceptedConnections, 1, `${node}: the other replica never opened one`);
      assert.equal(s.refusedConnections, 0);
    }

    // A participant's roster changes reach the database through the holder of the meeting's node only.
    const node = nodes[0] as string;
    const [holder, other] = (await view(a, node))?.followsFeed ? [a, b] : [b, a];
    const meeting = sim.startCall({ name: 'Leased', bridges: [node] });
    const alice = sim.join({ meeting, bridge: node, remoteParty: 'alice@corp.example', displayName: 'Alice' });
    await eventually(
      async () => {
        const [row] = await db.select().from(callLegObservations).where(eq(callLegObservations.participantId, alice.participantId));
        return row?.source === 'events' && row.state === 'connected';
      },
      { what: 'alice from the roster' },
    );
    sim.updateCallLeg(alice.callLegId, { rxAudioMute: true });
    await eventually(
      async () => {
        const [row] = await db.select().from(callLegObservations).where(eq(callLegObservations.participantId, alice.participantId));
        return row?.audioMuted === true;
      },
      { what: 'the mute from the roster' },
    );
    assert.ok((await metric(holder, 'cms_events_roster_updates_total', { node })) > 0, 'the holder stored roster updates');
    assert.equal(await metric(other, 'cms_events_roster_updates_total', { node }), 0, 'the other replica stored none');
  });

  test('a holder that cannot reach Redis stops its feed before the lease expires, and the other replica takes the node over', async () => {
    const { sim, nodes, prefix } = await simulator(1);
    const node = nodes[0] as string;
    const url = new URL(redisUrl);
    const proxy = await startTcpProxy(url.hostname, Number(url.port || 6379));
    cleanups.push(() => proxy.close());
    // The holder reaches Redis through a proxy the test cuts: it can neither renew nor release (a crash, for the lease).
    const a = await replica(sim, nodes, { prefix, redisUrl: proxy.url(redisUrl), leaseMs: 1500 });
    await eventually(async () => (await view(a, node))?.mode === 'events', { what: 'the first replica following the node' });
    const b = await replica(sim, nodes, { prefix, leaseMs: 1500 });
    await followedBy(a, b, node);
    assert.equal(stats(sim, node).acceptedConnections, 1);

    await proxy.cut();
    // Fencing: the holder gives the feed up on its own (its Redis commands hang, no renewal comes back).
    await eventually(async () => (await view(a, node))?.followsFeed === false, { what: 'the cut-off holder to stop its feed' });
    await eventually(async () => (await view(b, node))?.followsFeed === true && (await view(b, node))?.mode === 'events', {
      what: 'the other replica following the node',
    });
    const s = stats(sim, node);
    assert.equal(s.connections.length, 1, 'one open events connection after the takeover');
    assert.equal(s.acceptedConnections, 2, 'the second replica opened one');
    assert.equal(s.peakConnections, 1, 'never two at once: the first closed its feed before the second took the lease');
    assert.equal((await modeRow(node))?.mode, 'events');
    // The cut-off replica cannot learn who holds the lease now: it reports polling and why, not a feed.
    const cutOff = await view(a, node);
    assert.equal(cutOff?.mode, 'polling');
    assert.equal(cutOff?.followsFeed, false);
    assert.match(cutOff?.reason ?? '', /lease was not renewed in time/);

    // Redis back: the first replica learns who follows the node and reports its mode, without a connection of its own.
    await proxy.restore();
    await followedBy(b, a, node);
    assert.equal(stats(sim, node).acceptedConnections, 2);
  });

  test('a replica that closes releases its lease: the other takes the node over at once, not after the lease', async () => {
    const { sim, nodes, prefix } = await simulator(1);
    const node = nodes[0] as string;
    // A lease far longer than the wait below: only the release lets the other replica in that soon.
    const leaseMs = 20_000;
    const a = await replica(sim, nodes, { prefix, leaseMs });
    await eventually(async () => (await view(a, node))?.mode === 'events', { what: 'the first replica following the node' });
    const b = await replica(sim, nodes, { prefix, leaseMs });
    await followedBy(a, b, node);
    const closedAt = Date.now();
    await a.close();
    // b asks every fifth of the lease (4 s); the release shows at b's next ask, well before the 20 s lease ends.
    await eventually(async () => (await view(b, node))?.followsFeed === true && (await view(b, node))?.mode === 'events', {
      what: 'the other replica following the node after the release',
      timeoutMs: 10_000,
    });
    assert.ok(Date.now() - closedAt < leaseMs, 'taken over before the lease would have expired');
    assert.equal(stats(sim, node).peakConnections, 1);
    assert.equal((await modeRow(node))?.mode, 'events');
  });
});
