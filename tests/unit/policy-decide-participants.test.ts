/**
 * decideFromParticipants: the decision of a change from the changed legs and each instance's worst stored participant
 * must be decideMeetings' decision from every leg, whatever the meeting looks like (level, decisive participant, the
 * cause and reason of a level change, messages and writes).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mulberry32 } from '@cms/cms-sim';
import { configSchema } from '@cms/config';
import {
  type CallInstance,
  type CountedParticipant,
  compilePolicy,
  countedParticipants,
  decideFromParticipants,
  decideMeetings,
  type LegFacts,
  type StoredMeeting,
  type StoredMessage,
} from '@cms/policy';

const policy = compilePolicy(configSchema.shape.policy.parse({ secureDomains: ['corp.com'], internalDomains: ['partner.org'] }));
const managedNodes = new Set(['cms1', 'cms2', 'cms3']);

type Leg = LegFacts & { callId: string };

function randomLeg(next: () => number, id: string, callId: string): Leg {
  // Mostly secure and internal participants, so that the one external participant who comes and goes moves the level.
  const where = next();
  const domain = where < 0.6 ? 'corp.com' : where < 0.9 ? 'partner.org' : 'elsewhere.net';
  const pick = next();
  return {
    id,
    callId,
    type: pick < 0.03 ? 'acano' : 'sip',
    guestConnection: pick > 0.98,
    remoteParty: `${id}@${domain}`,
    state: next() < 0.85 ? 'connected' : 'ringing',
    deactivated: next() < 0.05,
    endedAt: next() < 0.15 ? '2026-12-07T10:00:00.000Z' : null,
  };
}

/** What participant_levels would hold, and its worst participant per instance (level, then leg id, as the index reads). */
function worstByInstance(legs: readonly Leg[], recorders: ReadonlySet<string>): CountedParticipant[] {
  const worst = new Map<string, CountedParticipant>();
  for (const p of countedParticipants(legs, recorders, policy)) {
    const current = worst.get(p.callId);
    if (!current || p.level > current.level || (p.level === current.level && p.legId < current.legId)) worst.set(p.callId, p);
  }
  return [...worst.values()];
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

describe('deciding a change from the changed legs', () => {
  test('gives the decision of every leg, over 600 random changes to a meeting over three bridges', () => {
    const next = mulberry32(13);
    const instances: CallInstance[] = ['call-a', 'call-b', 'call-c'].map((id, i) => ({
      id,
      node: `cms${i + 1}`,
      callCorrelator: 'meeting-1',
      endedAt: null,
    }));
    let legs: Leg[] = [];
    for (let i = 0; i < 6; i++) legs.push(randomLeg(next, `leg-${String(i).padStart(4, '0')}`, instances[i % 3]?.id as string));
    const recorders = new Set(['leg-0007']);
    let stored: StoredMeeting[] = [];
    let messages: StoredMessage[] = [];
    let changedLevels = 0;
    let serial = 100;
    for (let step = 0; step < 600; step++) {
      // Change one to three legs: a new participant, a departure, a state change, or a new address.
      const changed = new Set<string>();
      for (let n = 1 + Math.floor(next() * 3); n > 0; n--) {
        const kind = next();
        if (kind < 0.35) {
          const id = `leg-${String(serial++).padStart(4, '0')}x`;
          legs.push(randomLeg(next, id, instances[Math.floor(next() * 3)]?.id as string));
          changed.add(id);
        } else {
          // Changes are to participants still there, so the meeting stays small and its worst participant changes.
          const present = legs.filter((l) => !l.endedAt);
          if (!present.length) continue;
          const target = present[Math.floor(next() * present.length)] as Leg;
          const updated: Leg =
            kind < 0.7
              ? { ...target, endedAt: '2026-12-07T11:00:00.000Z' }
              : kind < 0.85
                ? { ...target, state: next() < 0.2 ? 'onHold' : 'connected', deactivated: next() < 0.2 }
                : { ...randomLeg(next, target.id, target.callId), endedAt: null };
          legs = legs.map((l) => (l.id === target.id ? updated : l));
          changed.add(target.id);
        }
      }
      legs.sort(byId);
      const everyLeg = decideMeetings({
        keys: ['meeting-1'],
        state: { instances, legs, recorderLegIds: recorders, meetings: stored, messages },
        changedLegIds: [...changed],
        policy,
        managedNodes,
      });
      const fromChanges = decideFromParticipants({
        keys: ['meeting-1'],
        instances,
        worstByInstance: worstByInstance(legs, recorders),
        changedLegs: legs.filter((l) => changed.has(l.id)),
        meetings: stored,
        messages,
        policy,
        managedNodes,
      });
      assert.deepEqual(fromChanges, everyLeg, `step ${step}`);
      changedLevels += everyLeg.levelChanges.length;
      stored = everyLeg.levels;
      const written = new Map(everyLeg.messages.map((m) => [m.callId, m]));
      messages = [...messages.filter((m) => !written.has(m.callId)), ...written.values()].map((m) => ({
        callId: m.callId,
        messageText: m.messageText,
        messagePosition: m.messagePosition,
        messageDuration: m.messageDuration,
      }));
    }
    // The walk did move the level, both ways, many times (the comparison covered level changes, not just quiet steps).
    assert.ok(changedLevels >= 40, `only ${changedLevels} level changes`);
  });

  test('the worst participant leaving improves the level to the next worst, caused by the one who left', () => {
    const instances: CallInstance[] = [
      { id: 'call-a', node: 'cms1', callCorrelator: 'meeting-1', endedAt: null },
      { id: 'call-b', node: 'cms2', callCorrelator: 'meeting-1', endedAt: null },
    ];
    const secure = (id: string, callId: string): Leg => ({ id, callId, type: 'sip', state: 'connected', remoteParty: `${id}@corp.com` });
    const legs: Leg[] = [
      secure('leg-1', 'call-a'),
      { ...secure('leg-2', 'call-b'), remoteParty: 'leg-2@partner.org' },
      secure('leg-3', 'call-b'),
      { ...secure('leg-4', 'call-a'), guestConnection: true, endedAt: '2026-12-07T11:00:00.000Z' },
    ];
    const decision = decideFromParticipants({
      keys: ['meeting-1'],
      instances,
      worstByInstance: worstByInstance(legs, new Set()),
      changedLegs: [{ id: 'leg-4', callId: 'call-a' }],
      meetings: [{ meetingKey: 'meeting-1', level: 3, decisiveLegId: 'leg-4' }],
      messages: instances.map((c) => ({
        callId: c.id,
        messageText: 'Security Level 3',
        messagePosition: 'bottom',
        messageDuration: 'permanent',
      })),
      policy,
      managedNodes,
    });
    assert.deepEqual(decision.levels, [{ meetingKey: 'meeting-1', level: 2, decisiveLegId: 'leg-2' }]);
    assert.equal(decision.levelChanges.length, 1);
    assert.equal(decision.levelChanges[0]?.causeLegId, 'leg-4');
    assert.equal(decision.levelChanges[0]?.reason?.rule, 'internalDomain');
    assert.deepEqual(
      decision.writes.map((w) => [w.callId, w.messageText]),
      [
        ['call-a', 'Security Level 2'],
        ['call-b', 'Security Level 2'],
      ],
    );
  });

  test('on a tie between instances the first instance holds the decisive participant, as meetingLevel takes them', () => {
    const instances: CallInstance[] = [
      { id: 'call-a', node: 'cms1', callCorrelator: 'meeting-1', endedAt: null },
      { id: 'call-b', node: 'cms2', callCorrelator: 'meeting-1', endedAt: null },
    ];
    const worst: CountedParticipant[] = [
      { callId: 'call-b', legId: 'leg-1', level: 3, classification: { level: 3, rule: 'guest' } },
      { callId: 'call-a', legId: 'leg-9', level: 3, classification: { level: 3, rule: 'app' } },
    ];
    const decision = decideFromParticipants({
      keys: ['meeting-1'],
      instances,
      worstByInstance: worst,
      changedLegs: [],
      meetings: [],
      messages: [],
      policy,
      managedNodes,
    });
    assert.deepEqual(decision.levels, [{ meetingKey: 'meeting-1', level: 3, decisiveLegId: 'leg-9' }]);
    assert.equal(decision.levelChanges[0]?.reason?.rule, 'app');
  });
});
