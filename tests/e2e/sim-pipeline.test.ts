/**
 * The records pipeline fed only by the CMS simulator: what the simulated Call Bridges report they sent is
 * exactly what Postgres holds, across a receiver outage, and a buffer overflow becomes a recorded gap.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startSimulator } from '@cms/cms-sim';
import { pg } from '@cms/db';
import { eventually, onTestFileEnd } from '../helpers/infra.ts';
import { type Stack, startStack } from '../helpers/stack.ts';

const DEMO = fileURLToPath(new URL('../../tools/cms-sim/scenarios/demo.yaml', import.meta.url));

async function query<T>(stack: Stack, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: stack.databaseUrl });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

const keyOf = (session: string, correlatorIndex: number | string) => `${session}/${correlatorIndex}`;

async function storedKeys(stack: Stack, sessions: string[]): Promise<Set<string>> {
  const rows = await query<{ session: string; correlator_index: string }>(
    stack,
    'SELECT session, correlator_index FROM cdr_records WHERE session = ANY($1)',
    [sessions],
  );
  return new Set(rows.map((r) => keyOf(r.session, r.correlator_index)));
}

describe('the pipeline fed by the CMS simulator', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ services: ['cdr-ingest', 'policy-worker'] });
  });

  test('stores exactly the records the simulator sent for the demo scenario, across a receiver outage', async () => {
    const sim = await startSimulator({
      bridges: [{ name: 'cms-1' }, { name: 'cms-2' }],
      seed: 20261121,
      cdrReceivers: [`${stack.url('cdr-ingest')}/cdr/{bridge}?token=${stack.ingestToken}`],
      cdr: { flushDelayMs: 5, resendInitialMs: 20, resendMaxMs: 200 },
      controlPort: null,
    });
    onTestFileEnd(() => sim.stop());
    // An outage of our receiver while the 40 participants join (the demo's own outage falls in a quiet minute).
    sim.receiverOutage(true);
    const run = sim.runScenario(DEMO, { speed: 600 });
    await eventually(() => sim.cdrStats().some((s) => s.failedPosts > 0), { what: 'POSTs failing during the outage' });
    sim.receiverOutage(false);
    const result = await run;
    assert.deepEqual(result.errors, []);
    await sim.waitForCdrsDelivered({ timeoutMs: 60_000 });

    const stats = sim.cdrStats();
    const sent = sim.cdrRecords();
    assert.ok(sent.length > 150, `a realistic amount of records (${sent.length})`);
    assert.ok(
      stats.some((s) => s.failedPosts > 0 && s.resends > 0),
      'the outage made the simulator re-send',
    );
    assert.equal(
      stats.reduce((n, s) => n + s.discarded, 0),
      0,
      'nothing was discarded: the buffer held the outage',
    );
    const expected = new Set(sent.map((r) => keyOf(r.session, r.correlatorIndex)));
    const sessions = [...new Set(sent.map((r) => r.session))];
    await eventually(async () => (await storedKeys(stack, sessions)).size === expected.size, {
      what: 'every sent record stored',
      timeoutMs: 30_000,
    });
    assert.deepEqual(await storedKeys(stack, sessions), expected);
    const [dups] = await query<{ n: number }>(
      stack,
      'SELECT count(*)::int - count(DISTINCT (session, correlator_index))::int AS n FROM cdr_records',
    );
    assert.equal(dups?.n, 0);
    // Both bridges' calls of the distributed board meeting are known, with their legs.
    const calls = await query<{ node: string; legs: number }>(
      stack,
      "SELECT c.node, count(l.id)::int AS legs FROM calls c JOIN call_legs l ON l.call_id = c.id WHERE c.name = 'Board meeting' GROUP BY c.node ORDER BY c.node",
    );
    assert.deepEqual(
      calls.map((c) => c.node),
      ['cms-1', 'cms-2'],
    );
  });

  test('records CMS had to discard during a long outage are reported as a gap, and the rest are stored', async () => {
    const sim = await startSimulator({
      bridges: [{ name: 'cms-1' }],
      cdrReceivers: [`${stack.url('cdr-ingest')}/cdr/{bridge}?token=${stack.ingestToken}`],
      cdr: { flushDelayMs: 5, resendInitialMs: 20, resendMaxMs: 100, bufferLimit: 10 },
      controlPort: null,
    });
    onTestFileEnd(() => sim.stop());
    const meeting = sim.startCall({ name: 'Outage meeting', bridges: ['cms-1'] });
    sim.join({ meeting, bridge: 'cms-1', remoteParty: 'first@example.com' });
    await sim.waitForCdrsDelivered();
    sim.receiverOutage(true);
    for (let i = 0; i < 12; i++) sim.join({ meeting, bridge: 'cms-1', remoteParty: `p${i}@example.com` });
    await eventually(() => sim.cdrStats().some((s) => s.discarded > 0), { what: 'records discarded by the full buffer' });
    sim.receiverOutage(false);
    sim.join({ meeting, bridge: 'cms-1', remoteParty: 'last@example.com' });
    await sim.waitForCdrsDelivered({ timeoutMs: 30_000 });

    const [stat] = sim.cdrStats();
    assert.ok(stat && stat.discarded > 0);
    const session = sim.bridge('cms-1').session;
    const sent = sim.cdrRecords('cms-1');
    await eventually(async () => (await storedKeys(stack, [session])).size === sent.length - (stat?.discarded ?? 0), {
      what: 'the records CMS still had',
    });
    const gaps = await eventually(async () => {
      const rows = await query<{ missing: number }>(stack, 'SELECT missing FROM cdr_gaps WHERE session = $1', [session]);
      return rows.length ? rows : undefined;
    });
    assert.equal(
      gaps.reduce((n, g) => n + g.missing, 0),
      stat?.discarded,
      'the gap counts exactly the discarded records',
    );
  });
});
