import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { buildPlan, loadScenario, parseLoadArgument, type Scenario, ScenarioError, type SimRecord, startSimulator } from '@cms/cms-sim';

/** Scenarios and load mode: timelines from a file or object, deterministic with a seed. */

const LOBBY_SCENARIO = `
clock: "09:00"
meetings:
  - id: board
    name: Board meeting
    bridges: [cms-1, cms-2]
    start: "09:00"
    end: "09:30"
    participants:
      count: 40
      over: 60s
      domains: [example.com, partner.example.org]
    lobby:
      count: 3
      at: "09:02"
      admit: 1
`;

/** What must be equal between two runs: everything but times, durations and the session. */
function normalise(records: SimRecord[]): unknown[] {
  return records.map((r) => {
    const { durationSeconds, activatedDuration, ...body } = r.body as Record<string, unknown>;
    void durationSeconds;
    void activatedDuration;
    return [r.correlatorIndex, r.type, r.objectKind, r.objectId, r.callBridge, body];
  });
}

async function runOnce(seed: number, scenario: Scenario | string) {
  const sim = await startSimulator({ bridges: [{ name: 'cms-1' }, { name: 'cms-2' }], seed, controlPort: null });
  try {
    const report = await sim.runScenario(scenario, { speed: Number.POSITIVE_INFINITY });
    return { report, cms1: sim.cdrRecords('cms-1'), cms2: sim.cdrRecords('cms-2'), inspect: sim.inspect() };
  } finally {
    await sim.stop();
  }
}

describe('scenarios', () => {
  test('the same seed gives the same CDR sequence; another seed does not', async () => {
    const a = await runOnce(99, LOBBY_SCENARIO);
    const b = await runOnce(99, LOBBY_SCENARIO);
    const c = await runOnce(100, LOBBY_SCENARIO);
    assert.ok(a.cms1.length > 50);
    assert.deepEqual(normalise(b.cms1), normalise(a.cms1));
    assert.deepEqual(normalise(b.cms2), normalise(a.cms2));
    assert.notDeepEqual(normalise(c.cms1), normalise(a.cms1));
  });

  test('a lobby scenario: three guests wait, one is admitted, everyone leaves at the end', async () => {
    const { report, cms1, cms2, inspect } = await runOnce(7, LOBBY_SCENARIO);
    assert.deepEqual(report.errors, []);
    assert.equal(report.joins, 43);
    assert.equal(report.admitted, 1);
    assert.equal(report.leaves, 43);
    const records = [...cms1, ...cms2];
    const waited = records.filter((r) => r.type === 'callLegUpdate' && (r.body as { deactivated?: string }).deactivated === 'true');
    const admitted = records.filter((r) => r.type === 'callLegUpdate' && (r.body as { deactivated?: string }).deactivated === 'false');
    assert.equal(waited.length, 3);
    assert.equal(admitted.length, 1);
    const starts = records.filter((r) => r.type === 'callStart');
    assert.equal(starts.length, 2, 'one call per bridge');
    assert.equal(new Set(starts.map((r) => (r.body as { callCorrelator: string }).callCorrelator)).size, 1);
    assert.equal(records.filter((r) => r.type === 'callEnd').length, 2);
    assert.equal(inspect.bridges.flatMap((b) => b.calls).length, 0);
    const domains = new Set(
      records
        .filter(
          (r) => r.type === 'callLegStart' && (r.body as { type: string }).type === 'sip' && !(r.body as { subType?: string }).subType,
        )
        .map((r) => (r.body as { remoteParty: string }).remoteParty.split('@')[1]),
    );
    assert.deepEqual([...domains].sort(), ['example.com', 'partner.example.org']);
  });

  test('load mode runs the requested meetings and joins at the given window', async () => {
    const { report, cms1, cms2 } = await runOnce(5, {
      load: { meetings: 6, participantsPerMeeting: 5, joinWindowSeconds: 30, durationSeconds: 60, bridgesPerMeeting: 2 },
    });
    assert.deepEqual(report.errors, []);
    assert.equal(report.joins, 30);
    assert.equal(report.leaves, 30);
    const correlators = new Set(
      [...cms1, ...cms2].filter((r) => r.type === 'callStart').map((r) => (r.body as { callCorrelator: string }).callCorrelator),
    );
    assert.equal(correlators.size, 6);
  });

  test('a plan is the same for the same seed and spreads joins over the window', () => {
    const scenario = loadScenario(LOBBY_SCENARIO);
    const p1 = buildPlan(scenario, { bridges: ['cms-1', 'cms-2'], seed: 4 });
    const p2 = buildPlan(scenario, { bridges: ['cms-1', 'cms-2'], seed: 4 });
    assert.deepEqual(p1, p2);
    const joins = p1.filter((s) => s.type === 'join' && !s.lobby);
    assert.equal(joins.length, 40);
    for (const j of joins) assert.ok(j.at >= 0 && j.at <= 60);
    const lobby = p1.filter((s) => s.type === 'join' && s.lobby);
    assert.ok(
      lobby.every((s) => s.at >= 120),
      'guests arrive at 09:02',
    );
    const leaves = p1.filter((s) => s.type === 'leaveOne');
    assert.ok(
      leaves.every((s) => s.at === 1800),
      'all leave at 09:30',
    );
  });

  test('the demo scenario file parses and plans against a two-bridge cluster', () => {
    const scenario = loadScenario(join(import.meta.dirname, '../../tools/cms-sim/scenarios/demo.yaml'));
    const plan = buildPlan(scenario, { bridges: ['cms-1', 'cms-2'], seed: 1 });
    assert.ok(plan.length > 100);
    assert.equal(scenario.speed, 60);
  });

  test('scenario mistakes are reported with the offending key', () => {
    assert.throws(
      () => loadScenario({ meetings: [{ participants: { count: -1 } }] }),
      (err: Error) => {
        assert.ok(err instanceof ScenarioError);
        assert.match(err.message, /meetings\[0\]\.participants\.count/);
        return true;
      },
    );
    assert.throws(() => loadScenario({ timeline: [{ at: 'soon', action: 'faults', faults: {} }] }), /timeline\[0\]\.at/);
    assert.throws(() => loadScenario('missing-file.yaml'), /not found/);
    assert.throws(() => parseLoadArgument('meetings=2,bogus=3'), /bogus/);
    assert.deepEqual(parseLoadArgument('meetings=200,participants=20,window=60'), {
      joinWindowSeconds: 60,
      meetings: 200,
      participantsPerMeeting: 20,
    });
  });
});

describe('call-control scenario steps', () => {
  test('dialOut, shareContent, activeSpeaker, toLobby and failWrites steps act on the meeting', async () => {
    const sim = await startSimulator({ seed: 12, controlPort: null, dialOutAnswerMs: null });
    try {
      const report = await sim.runScenario(
        {
          meetings: [{ id: 'm', bridges: ['cms-1'], participants: { count: 4 } }],
          timeline: [
            { at: 1, action: 'dialOut', meeting: 'm', remoteParty: 'room@example.com' },
            { at: 2, action: 'shareContent', meeting: 'm' },
            { at: 3, action: 'activeSpeaker', meeting: 'm' },
            { at: 4, action: 'toLobby', meeting: 'm', count: 1 },
            { at: 5, action: 'failWrites', failureReason: 'participantLimitReached', method: 'POST' },
          ],
        },
        { speed: Number.POSITIVE_INFINITY },
      );
      assert.deepEqual(report.errors, []);
      const [call] = sim.inspect().bridges[0]?.calls ?? [];
      assert.ok(call);
      const dialled = call.legs.find((l) => l.remoteParty === 'room@example.com');
      assert.deepEqual([dialled?.direction, dialled?.state], ['outgoing', 'ringing']);
      assert.ok(call.presenter, 'someone shares content');
      assert.equal(call.presenterCallLeg, call.presenter);
      assert.ok(call.activeSpeaker);
      assert.equal(call.participants.filter((p) => p.deactivated).length, 1, 'one sent to the lobby');
      assert.equal(sim.inspect().bridges[0]?.writeFailures[0]?.failureReason, 'participantLimitReached');
      assert.throws(() => loadScenario({ timeline: [{ at: 1, action: 'toLobby', meeting: 'x', count: 1 }] }), ScenarioError);
    } finally {
      await sim.stop();
    }
  });
});
