/**
 * decideMeetings: the security policy's decision for a set of meetings, from their stored state alone (no
 * Postgres). tests/integration/policy-worker-levels.test.ts checks the same transitions through a real worker.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configSchema } from '@cms/config';
import {
  type CallInstance,
  compilePolicy,
  type DecideInput,
  decideMeetings,
  type LegFacts,
  type MeetingState,
  meetingsTouched,
  provisionalMoves,
  type StoredMessage,
} from '@cms/policy';

const lists = { secureDomains: ['corp.com'], internalDomains: ['partner.org'] };
const policy = compilePolicy(configSchema.shape.policy.parse(lists));
const lobbyCounted = compilePolicy(configSchema.shape.policy.parse({ ...lists, countLobby: true }));
const managedNodes = new Set(['cms1', 'cms2']);

type Leg = LegFacts & { callId: string };
const leg = (id: string, callId: string, remoteParty: string, facts: Partial<LegFacts> = {}): Leg => ({
  id,
  type: 'sip',
  state: 'connected',
  remoteParty,
  ...facts,
  callId,
});
const secure = (id: string, callId = 'call-1', facts?: Partial<LegFacts>) => leg(id, callId, `${id}@corp.com`, facts);
const internal = (id: string, callId = 'call-1', facts?: Partial<LegFacts>) => leg(id, callId, `${id}@partner.org`, facts);
const external = (id: string, callId = 'call-1', facts?: Partial<LegFacts>) => leg(id, callId, `${id}@elsewhere.net`, facts);
const ended = { endedAt: '2026-01-01T10:05:00.000Z' };

const call = (id: string, facts: Partial<CallInstance> = {}): CallInstance => ({
  id,
  node: 'cms1',
  callCorrelator: 'meeting-1',
  endedAt: null,
  ...facts,
});
const shows = (callId: string, level: 1 | 2 | 3): StoredMessage => ({
  callId,
  messageText: `Security Level ${level}`,
  messagePosition: 'bottom',
  messageDuration: 'permanent',
});
const cleared = (callId: string): StoredMessage => ({ callId, messageText: '', messagePosition: null, messageDuration: '0' });

function decideAll(state: Partial<MeetingState>, options: Partial<DecideInput> = {}) {
  return decideMeetings({
    keys: ['meeting-1'],
    state: { instances: [call('call-1')], legs: [], recorderLegIds: new Set(), meetings: [], messages: [], ...state },
    changedLegIds: [],
    policy,
    managedNodes,
    ...options,
  });
}

/** What is to be written (everything but the levels decided). */
function decide(state: Partial<MeetingState>, options: Partial<DecideInput> = {}) {
  const { levels: _, ...writes } = decideAll(state, options);
  return writes;
}

const nothing = { meetings: [], levelChanges: [], messages: [], writes: [] };

describe('decideMeetings: the level and its history', () => {
  test('a first participant sets the level: meeting row, history entry from none, message and write', () => {
    const decision = decide({ legs: [internal('a')] }, { changedLegIds: ['a'] });
    assert.deepEqual(decision.meetings, [{ meetingKey: 'meeting-1', level: 2, decisiveLegId: 'a' }]);
    assert.deepEqual(decision.levelChanges, [
      {
        meetingKey: 'meeting-1',
        oldLevel: null,
        newLevel: 2,
        causeLegId: 'a',
        reason: { level: 2, rule: 'internalDomain', matched: 'partner.org', host: 'partner.org', address: 'a@partner.org' },
      },
    ]);
    assert.deepEqual(decision.messages, [
      {
        callId: 'call-1',
        node: 'cms1',
        meetingKey: 'meeting-1',
        level: 2,
        messageText: 'Security Level 2',
        messagePosition: 'bottom',
        messageDuration: 'permanent',
        status: 'pending',
      },
    ]);
    assert.deepEqual(decision.writes, [{ callId: 'call-1', node: 'cms1', meetingKey: 'meeting-1', messageText: 'Security Level 2' }]);
  });

  test('level up: an external participant joining a secure meeting is the cause and the reason', () => {
    const decision = decide(
      {
        legs: [secure('a'), external('x')],
        meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }],
        messages: [shows('call-1', 1)],
      },
      { changedLegIds: ['x'] },
    );
    assert.deepEqual(decision.meetings, [{ meetingKey: 'meeting-1', level: 3, decisiveLegId: 'x' }]);
    assert.equal(decision.levelChanges.length, 1);
    assert.deepEqual(
      { ...decision.levelChanges[0], reason: decision.levelChanges[0]!.reason?.rule },
      { meetingKey: 'meeting-1', oldLevel: 1, newLevel: 3, causeLegId: 'x', reason: 'unlistedDomain' },
    );
    assert.deepEqual(
      decision.messages.map((m) => [m.callId, m.level, m.messageText, m.status]),
      [['call-1', 3, 'Security Level 3', 'pending']],
    );
    assert.deepEqual(
      decision.writes.map((w) => w.messageText),
      ['Security Level 3'],
    );
  });

  test('level down: the participant who left is the cause; the reason is the new decisive participant', () => {
    const decision = decide(
      {
        legs: [secure('a'), external('x', 'call-1', ended)],
        meetings: [{ meetingKey: 'meeting-1', level: 3, decisiveLegId: 'x' }],
        messages: [shows('call-1', 3)],
      },
      { changedLegIds: ['x'] },
    );
    assert.deepEqual(decision.meetings, [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }]);
    assert.equal(decision.levelChanges[0]!.oldLevel, 3);
    assert.equal(decision.levelChanges[0]!.newLevel, 1);
    assert.equal(decision.levelChanges[0]!.causeLegId, 'x');
    assert.equal(decision.levelChanges[0]!.reason?.rule, 'secureDomain');
    assert.deepEqual(
      decision.messages.map((m) => m.messageText),
      ['Security Level 1'],
    );
  });

  test('the decisive participant is the cause when its own facts changed, even if others changed too', () => {
    const decision = decide(
      { legs: [secure('a'), external('x')], meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }] },
      { changedLegIds: ['a', 'x'] },
    );
    assert.equal(decision.levelChanges[0]!.causeLegId, 'x');
  });

  test('a recompute with no changed leg (reconciliation) names the decisive participant as the cause', () => {
    const decision = decide({ legs: [internal('b')], meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }] });
    assert.equal(decision.levelChanges[0]!.causeLegId, 'b');
  });

  test('nobody counted any more: level cleared (history entry to none, no reason) and the clear message written', () => {
    const decision = decide(
      {
        legs: [secure('a', 'call-1', ended)],
        meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }],
        messages: [shows('call-1', 1)],
      },
      { changedLegIds: ['a'] },
    );
    assert.deepEqual(decision.meetings, [{ meetingKey: 'meeting-1', level: null, decisiveLegId: null }]);
    assert.deepEqual(decision.levelChanges, [{ meetingKey: 'meeting-1', oldLevel: 1, newLevel: null, causeLegId: 'a', reason: null }]);
    assert.deepEqual(decision.messages, [
      {
        callId: 'call-1',
        node: 'cms1',
        meetingKey: 'meeting-1',
        level: null,
        messageText: '',
        messagePosition: null,
        messageDuration: '0',
        status: 'pending',
      },
    ]);
    assert.deepEqual(decision.writes, [{ callId: 'call-1', node: 'cms1', meetingKey: 'meeting-1', messageText: '' }]);
  });

  test('a meeting nobody ever counted in gets a row with no level, no history entry and no message to clear', () => {
    const decision = decide({ legs: [secure('a', 'call-1', { state: 'ringing' })] }, { changedLegIds: ['a'] });
    assert.deepEqual(decision, { ...nothing, meetings: [{ meetingKey: 'meeting-1', level: null, decisiveLegId: null }] });
  });

  test('a message already cleared is not cleared again', () => {
    const decision = decide({
      legs: [],
      meetings: [{ meetingKey: 'meeting-1', level: null, decisiveLegId: null }],
      messages: [cleared('call-1')],
    });
    assert.deepEqual(decision, nothing);
  });

  test('the level of every meeting is given, whether it changed or not', () => {
    const decision = decideAll(
      {
        instances: [call('call-1'), call('call-2', { callCorrelator: 'meeting-2' })],
        legs: [secure('a'), external('x', 'call-2')],
        meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }],
        messages: [shows('call-1', 1)],
      },
      { keys: ['meeting-1', 'meeting-2', 'meeting-3'] },
    );
    assert.deepEqual(decision.levels, [
      { meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' },
      { meetingKey: 'meeting-2', level: 3, decisiveLegId: 'x' },
      { meetingKey: 'meeting-3', level: null, decisiveLegId: null },
    ]);
  });

  test('same level, same decisive participant, same message: nothing is written', () => {
    const decision = decide(
      {
        legs: [secure('a'), secure('b')],
        meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }],
        messages: [shows('call-1', 1)],
      },
      { changedLegIds: ['b'] },
    );
    assert.deepEqual(decision, nothing);
  });

  test('same level, another decisive participant: only the meeting row changes', () => {
    const decision = decide(
      {
        legs: [secure('a', 'call-1', ended), secure('b')],
        meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }],
        messages: [shows('call-1', 1)],
      },
      { changedLegIds: ['a'] },
    );
    assert.deepEqual(decision, { ...nothing, meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'b' }] });
  });

  test('the decisive participant is the first at the worst level, in the order the legs are given', () => {
    const decision = decide({ legs: [secure('a'), internal('b2'), internal('b1')] });
    assert.equal(decision.meetings[0]!.decisiveLegId, 'b2');
  });

  test('a level unchanged from the stored one written as a number is no change (Postgres returns integers)', () => {
    const decision = decide({
      legs: [external('x')],
      meetings: [{ meetingKey: 'meeting-1', level: 3, decisiveLegId: 'x' }],
      messages: [shows('call-1', 3)],
    });
    assert.deepEqual(decision, nothing);
  });
});

describe('decideMeetings: who counts', () => {
  test('ended legs, ringing legs, IVR legs, bridge links and recorders do not count', () => {
    const decision = decide({
      legs: [
        secure('a'),
        external('ended', 'call-1', ended),
        external('ringing', 'call-1', { state: 'ringing' }),
        external('ivr', 'call-1', { inIvr: true }),
        external('link', 'call-1', { subType: 'distributionLink' }),
        external('recorder'),
      ],
      recorderLegIds: new Set(['recorder']),
    });
    assert.deepEqual(decision.meetings, [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }]);
  });

  test('a participant waiting in the lobby does not count unless countLobby is set', () => {
    const state = { legs: [secure('a'), external('lobby', 'call-1', { deactivated: true })] };
    assert.equal(decide(state).meetings[0]!.level, 1);
    const counted = decide(state, { policy: lobbyCounted });
    assert.equal(counted.meetings[0]!.level, 3);
    assert.equal(counted.meetings[0]!.decisiveLegId, 'lobby');
  });

  test('admission from the lobby raises the level, caused by the admitted participant', () => {
    const decision = decide(
      {
        legs: [secure('a'), external('lobby', 'call-1', { deactivated: false })],
        meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }],
        messages: [shows('call-1', 1)],
      },
      { changedLegIds: ['lobby'] },
    );
    assert.deepEqual(
      decision.levelChanges.map((c) => [c.oldLevel, c.newLevel, c.causeLegId]),
      [[1, 3, 'lobby']],
    );
  });

  test('a leg with no state but a connectedAt counts (the state may not have caught up)', () => {
    const decision = decide({ legs: [external('x', 'call-1', { state: null, connectedAt: '2026-01-01T10:00:00.000Z' })] });
    assert.equal(decision.meetings[0]!.level, 3);
  });
});

describe('decideMeetings: the message of each call instance', () => {
  test('a new instance on another bridge gets the meeting message, written to its own node; the other is left alone', () => {
    const decision = decide(
      {
        instances: [call('call-1'), call('call-2', { node: 'cms2' })],
        legs: [internal('a'), internal('b', 'call-2')],
        meetings: [{ meetingKey: 'meeting-1', level: 2, decisiveLegId: 'a' }],
        messages: [shows('call-1', 2)],
      },
      { changedLegIds: ['b'] },
    );
    assert.deepEqual(decision.meetings, []);
    assert.deepEqual(decision.levelChanges, []);
    assert.deepEqual(
      decision.messages.map((m) => [m.callId, m.node, m.meetingKey, m.messageText, m.status]),
      [['call-2', 'cms2', 'meeting-1', 'Security Level 2', 'pending']],
    );
    assert.deepEqual(decision.writes, [{ callId: 'call-2', node: 'cms2', meetingKey: 'meeting-1', messageText: 'Security Level 2' }]);
  });

  test('the legs of every instance count: a participant on the other bridge sets the level of both', () => {
    const decision = decide(
      {
        instances: [call('call-1'), call('call-2', { node: 'cms2' })],
        legs: [secure('a'), external('x', 'call-2')],
        meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }],
        messages: [shows('call-1', 1), shows('call-2', 1)],
      },
      { changedLegIds: ['x'] },
    );
    assert.deepEqual(
      decision.writes.map((w) => [w.callId, w.node, w.messageText]),
      [
        ['call-1', 'cms1', 'Security Level 3'],
        ['call-2', 'cms2', 'Security Level 3'],
      ],
    );
  });

  test('an ended instance gets no message', () => {
    const decision = decide({
      instances: [call('call-1', { endedAt: '2026-01-01T10:10:00.000Z' }), call('call-2', { node: 'cms2' })],
      legs: [secure('a', 'call-2')],
    });
    assert.deepEqual(
      decision.messages.map((m) => m.callId),
      ['call-2'],
    );
  });

  test('an instance on a node we do not manage is recorded as unmanaged, and one on no known node as unplaced: no writes', () => {
    const decision = decide({
      instances: [call('call-1', { node: 'elsewhere' }), call('call-2', { node: null })],
      legs: [secure('a'), secure('b', 'call-2')],
    });
    assert.deepEqual(
      decision.messages.map((m) => [m.callId, m.status]),
      [
        ['call-1', 'unmanaged'],
        ['call-2', 'unplaced'],
      ],
    );
    assert.deepEqual(decision.writes, []);
  });

  test('a stored message that differs only in position or duration is replaced (the configuration changed)', () => {
    for (const stored of [
      { ...shows('call-1', 1), messagePosition: 'top' },
      { ...shows('call-1', 1), messageDuration: '30' },
    ]) {
      const decision = decide({
        legs: [secure('a')],
        meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }],
        messages: [stored],
      });
      assert.deepEqual(
        decision.writes.map((w) => w.messageText),
        ['Security Level 1'],
      );
    }
  });

  test('the configured text, position and duration are what is stored', () => {
    const custom = compilePolicy(
      configSchema.shape.policy.parse({ ...lists, messages: { 3: { text: 'EXTERNAL', position: 'top', duration: 30 } } }),
    );
    const decision = decide({ legs: [external('x')] }, { policy: custom });
    assert.deepEqual(
      decision.messages.map((m) => [m.messageText, m.messagePosition, m.messageDuration]),
      [['EXTERNAL', 'top', '30']],
    );
  });

  test('a call of another meeting among the instances is left to its own meeting', () => {
    const decision = decide({
      instances: [call('call-1'), call('other', { callCorrelator: 'meeting-2' })],
      legs: [secure('a'), external('x', 'other')],
    });
    assert.deepEqual(decision.meetings, [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }]);
    assert.deepEqual(
      decision.messages.map((m) => m.callId),
      ['call-1'],
    );
  });

  test('each meeting of several is decided on its own', () => {
    const decision = decide(
      {
        instances: [call('call-1'), call('call-2', { callCorrelator: 'meeting-2' })],
        legs: [secure('a'), external('x', 'call-2')],
      },
      { keys: ['meeting-1', 'meeting-2'] },
    );
    assert.deepEqual(decision.meetings, [
      { meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' },
      { meetingKey: 'meeting-2', level: 3, decisiveLegId: 'x' },
    ]);
    assert.deepEqual(
      decision.writes.map((w) => [w.callId, w.meetingKey, w.messageText]),
      [
        ['call-1', 'meeting-1', 'Security Level 1'],
        ['call-2', 'meeting-2', 'Security Level 3'],
      ],
    );
  });
});

describe('provisional meetings (a call decided before its callStart arrived)', () => {
  test('a call without a callCorrelator yet is its own meeting', () => {
    const decision = decide({ instances: [call('call-1', { callCorrelator: null })], legs: [external('x')] }, { keys: ['call-1'] });
    assert.deepEqual(decision.meetings, [{ meetingKey: 'call-1', level: 3, decisiveLegId: 'x' }]);
    assert.deepEqual(
      decision.messages.map((m) => [m.callId, m.meetingKey]),
      [['call-1', 'call-1']],
    );
  });

  test('meetingsTouched: the real meeting is decided, and the provisional key is locked too and a candidate to move', () => {
    const touched = meetingsTouched([
      { id: 'call-b', callCorrelator: 'meeting-1' },
      { id: 'call-a', callCorrelator: null },
      { id: 'call-c', callCorrelator: 'call-c' },
      { id: 'call-d', callCorrelator: 'meeting-1' },
    ]);
    assert.deepEqual(touched.keys, ['call-a', 'call-c', 'meeting-1']);
    assert.deepEqual(touched.lockKeys, ['call-a', 'call-b', 'call-c', 'call-d', 'meeting-1']);
    assert.deepEqual(touched.candidates, [
      { from: 'call-b', to: 'meeting-1' },
      { from: 'call-d', to: 'meeting-1' },
    ]);
  });

  test('meetingsTouched: an empty callCorrelator is no callCorrelator', () => {
    assert.deepEqual(meetingsTouched([{ id: 'call-a', callCorrelator: '' }]), { keys: ['call-a'], lockKeys: ['call-a'], candidates: [] });
  });

  test('provisionalMoves: only a provisional key that was decided (has a meetings row) moves', () => {
    const candidates = [
      { from: 'call-b', to: 'meeting-1' },
      { from: 'call-d', to: 'meeting-1' },
    ];
    assert.deepEqual(provisionalMoves(candidates, new Set(['call-d'])), [{ from: 'call-d', to: 'meeting-1' }]);
    assert.deepEqual(provisionalMoves(candidates, new Set()), []);
  });

  test('a meeting adopted from provisional keeps its level: no new history entry, no message written again', () => {
    // After adoption the provisional row is the meeting's row and the call's message is the meeting's.
    const decision = decide(
      {
        instances: [call('call-1', { callCorrelator: 'meeting-1' })],
        legs: [external('x')],
        meetings: [{ meetingKey: 'meeting-1', level: 3, decisiveLegId: 'x' }],
        messages: [shows('call-1', 3)],
      },
      { changedLegIds: [] },
    );
    assert.deepEqual(decision, nothing);
  });

  test('a meeting adopted into one that already had a level is decided from all its instances', () => {
    const decision = decide({
      instances: [call('call-1', { callCorrelator: 'meeting-1' }), call('call-2', { node: 'cms2' })],
      legs: [external('x'), secure('a', 'call-2')],
      meetings: [{ meetingKey: 'meeting-1', level: 1, decisiveLegId: 'a' }],
      messages: [shows('call-1', 3), shows('call-2', 1)],
    });
    assert.deepEqual(
      decision.levelChanges.map((c) => [c.oldLevel, c.newLevel, c.causeLegId]),
      [[1, 3, 'x']],
    );
    assert.deepEqual(
      decision.writes.map((w) => [w.callId, w.messageText]),
      [['call-2', 'Security Level 3']],
    );
  });
});
