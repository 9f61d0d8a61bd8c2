import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configSchema } from '@cms/config';
import { countsAsParticipant, type LegFacts, recorderOrStreamerLegIds } from '@cms/policy';

const lobbyExcluded = configSchema.shape.policy.parse({});
const lobbyCounted = configSchema.shape.policy.parse({ countLobby: true });

function leg(facts: Partial<LegFacts> = {}): LegFacts {
  return { id: 'leg-1', type: 'sip', remoteParty: 'alice@corp.com', state: 'connected', ...facts };
}

describe('countsAsParticipant', () => {
  test('counts a connected SIP leg', () => {
    assert.deepEqual(countsAsParticipant(leg(), lobbyExcluded), { counts: true, why: 'connected' });
  });

  test('does not count a leg that has not connected yet', () => {
    assert.deepEqual(countsAsParticipant(leg({ state: null }), lobbyExcluded), { counts: false, why: 'notConnected' });
  });

  test('does not count a ringing leg', () => {
    assert.deepEqual(countsAsParticipant(leg({ state: 'ringing' }), lobbyExcluded), { counts: false, why: 'notConnected' });
  });

  test('does not count a leg in its initial state', () => {
    assert.deepEqual(countsAsParticipant(leg({ state: 'initial' }), lobbyExcluded), { counts: false, why: 'notConnected' });
  });

  test('counts a leg on hold, as the API and events report it', () => {
    assert.deepEqual(countsAsParticipant(leg({ state: 'onHold' }), lobbyExcluded), { counts: true, why: 'connected' });
  });

  test('counts a leg with a connectedAt but no state yet', () => {
    assert.deepEqual(countsAsParticipant(leg({ state: null, connectedAt: '2025-01-01T10:00:00Z' }), lobbyExcluded), {
      counts: true,
      why: 'connected',
    });
  });

  test('does not count a leg in an IVR even when connected', () => {
    assert.deepEqual(countsAsParticipant(leg({ inIvr: true }), lobbyExcluded), { counts: false, why: 'inIvr' });
  });

  test('counts a leg that has left the IVR', () => {
    assert.deepEqual(countsAsParticipant(leg({ inIvr: false }), lobbyExcluded), { counts: true, why: 'connected' });
  });

  test('does not count an ended leg', () => {
    assert.deepEqual(countsAsParticipant(leg({ endedAt: '2025-01-01T10:05:00Z' }), lobbyExcluded), { counts: false, why: 'ended' });
  });

  test('does not count a leg whose end arrived before its connect', () => {
    const endedFirst = leg({ state: null, endedAt: '2025-01-01T10:05:00Z', connectedAt: null });
    assert.deepEqual(countsAsParticipant(endedFirst, lobbyExcluded), { counts: false, why: 'ended' });
  });

  test('does not count a distributionLink leg', () => {
    assert.deepEqual(countsAsParticipant(leg({ subType: 'distributionLink' }), lobbyExcluded), { counts: false, why: 'distributionLink' });
  });

  test('does not count a lyncDistribution leg', () => {
    assert.deepEqual(countsAsParticipant(leg({ subType: 'lyncDistribution' }), lobbyExcluded), { counts: false, why: 'distributionLink' });
  });

  test('does not count a recorder or streamer leg', () => {
    assert.deepEqual(countsAsParticipant(leg({ isRecorderOrStreamer: true }), lobbyExcluded), { counts: false, why: 'recorderOrStreamer' });
  });

  test('does not count a leg waiting in the lobby by default', () => {
    assert.deepEqual(countsAsParticipant(leg({ deactivated: true }), lobbyExcluded), { counts: false, why: 'inLobby' });
  });

  test('counts a leg waiting in the lobby when countLobby is set', () => {
    assert.deepEqual(countsAsParticipant(leg({ deactivated: true }), lobbyCounted), { counts: true, why: 'inLobbyCounted' });
  });

  test('counts a leg admitted from the lobby', () => {
    assert.deepEqual(countsAsParticipant(leg({ deactivated: false }), lobbyExcluded), { counts: true, why: 'connected' });
  });

  test('does not count a ringing leg even when countLobby is set', () => {
    assert.deepEqual(countsAsParticipant(leg({ state: 'ringing', deactivated: true }), lobbyCounted), {
      counts: false,
      why: 'notConnected',
    });
  });
});

describe('recorderOrStreamerLegIds', () => {
  test('collects the callLeg of recordingStart and streamingStart records only', () => {
    const ids = recorderOrStreamerLegIds([
      { type: 'recordingStart', callLegId: 'rec-leg' },
      { type: 'streamingStart', callLegId: 'stream-leg' },
      { type: 'callLegStart', callLegId: 'person-leg' },
      { type: 'recordingEnd', callLegId: null },
      { type: 'recordingStart', callLegId: null },
    ]);
    assert.deepEqual([...ids].sort(), ['rec-leg', 'stream-leg']);
  });
});
