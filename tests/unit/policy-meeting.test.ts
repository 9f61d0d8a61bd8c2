import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configSchema } from '@cms/config';
import { compilePolicy, desiredMessage, type LegFacts, meetingKey, meetingLevel } from '@cms/policy';

const lists = { secureDomains: ['corp.com'], internalDomains: ['partner.org'] };
const policy = compilePolicy(configSchema.shape.policy.parse(lists));
const lobbyCounted = compilePolicy(configSchema.shape.policy.parse({ ...lists, countLobby: true }));

function leg(id: string, remoteParty: string, facts: Partial<LegFacts> = {}): LegFacts {
  return { id, type: 'sip', state: 'connected', remoteParty, ...facts };
}

const secure = (id: string, facts?: Partial<LegFacts>) => leg(id, `${id}@corp.com`, facts);
const internal = (id: string, facts?: Partial<LegFacts>) => leg(id, `${id}@partner.org`, facts);
const external = (id: string, facts?: Partial<LegFacts>) => leg(id, `${id}@elsewhere.net`, facts);

describe('meetingKey', () => {
  test('groups call instances by callCorrelator', () => {
    assert.equal(meetingKey({ id: 'call-on-cms-1', callCorrelator: 'corr-1' }), 'corr-1');
    assert.equal(meetingKey({ id: 'call-on-cms-2', callCorrelator: 'corr-1' }), 'corr-1');
  });

  test('uses the call id when there is no callCorrelator', () => {
    assert.equal(meetingKey({ id: 'call-1', callCorrelator: null }), 'call-1');
    assert.equal(meetingKey({ id: 'call-1' }), 'call-1');
  });

  test('uses the call id when the callCorrelator is empty', () => {
    assert.equal(meetingKey({ id: 'call-1', callCorrelator: '' }), 'call-1');
  });
});

describe('meetingLevel', () => {
  test('is level 1 when every participant is secure', () => {
    const result = meetingLevel([secure('a'), secure('b')], policy);
    assert.equal(result.level, 1);
    assert.equal(result.decisiveLegId, 'a');
  });

  test('takes the worst level of its participants', () => {
    const result = meetingLevel([secure('a'), external('c'), internal('b')], policy);
    assert.equal(result.level, 3);
    assert.equal(result.decisiveLegId, 'c');
  });

  test('names the first participant at the worst level as decisive', () => {
    assert.equal(meetingLevel([secure('a'), internal('b1'), internal('b2')], policy).decisiveLegId, 'b1');
  });

  test('combines legs from every call instance of a distributed meeting', () => {
    const onCms1 = secure('a', { callId: 'call-on-cms-1' });
    const onCms2 = internal('b', { callId: 'call-on-cms-2' });
    assert.equal(meetingLevel([onCms1, onCms2], policy).level, 2);
  });

  test('lists each counted participant with its classification', () => {
    const result = meetingLevel([secure('a'), internal('b')], policy);
    assert.deepEqual(result.participants, [
      { legId: 'a', classification: { level: 1, rule: 'secureDomain', matched: 'corp.com', host: 'corp.com', address: 'a@corp.com' } },
      {
        legId: 'b',
        classification: { level: 2, rule: 'internalDomain', matched: 'partner.org', host: 'partner.org', address: 'b@partner.org' },
      },
    ]);
  });

  test('has no level and nothing decisive without legs', () => {
    assert.deepEqual(meetingLevel([], policy), { level: null, participants: [], ignored: [], decisiveLegId: null });
  });

  test('has no level when no leg counts, and lists why each was ignored', () => {
    const result = meetingLevel(
      [
        external('link', { subType: 'distributionLink' }),
        external('recorder', { isRecorderOrStreamer: true }),
        external('lobby', { deactivated: true }),
        external('ringing', { state: 'ringing' }),
        external('ivr', { inIvr: true }),
        external('gone', { endedAt: '2025-01-01T10:00:00Z' }),
      ],
      policy,
    );
    assert.equal(result.level, null);
    assert.equal(result.decisiveLegId, null);
    assert.deepEqual(result.ignored, [
      { legId: 'link', why: 'distributionLink' },
      { legId: 'recorder', why: 'recorderOrStreamer' },
      { legId: 'lobby', why: 'inLobby' },
      { legId: 'ringing', why: 'notConnected' },
      { legId: 'ivr', why: 'inIvr' },
      { legId: 'gone', why: 'ended' },
    ]);
  });

  test('is not raised by a distribution link from an unlisted bridge', () => {
    assert.equal(meetingLevel([secure('a'), external('link', { subType: 'distributionLink' })], policy).level, 1);
  });

  test('is not raised by a recorder leg', () => {
    assert.equal(meetingLevel([secure('a'), external('rec', { isRecorderOrStreamer: true })], policy).level, 1);
  });

  test('is not raised by a web guest until the guest connects', () => {
    const guest = (state: string) => ({ id: 'g', type: 'acano', subType: 'webApp', guestConnection: true, state });
    assert.equal(meetingLevel([secure('a'), guest('ringing')], policy).level, 1);
    assert.equal(meetingLevel([secure('a'), guest('connected')], policy).level, 3);
  });

  test('is raised by a lobby leg only once it is admitted', () => {
    assert.equal(meetingLevel([secure('a'), external('x', { deactivated: true })], policy).level, 1);
    assert.equal(meetingLevel([secure('a'), external('x', { deactivated: false })], policy).level, 3);
  });

  test('is raised by a lobby leg when countLobby is set', () => {
    assert.equal(meetingLevel([secure('a'), external('x', { deactivated: true })], lobbyCounted).level, 3);
  });

  test('is not raised by a leg still in the IVR', () => {
    assert.equal(meetingLevel([secure('a'), external('x', { inIvr: true })], policy).level, 1);
  });

  test('follows participants joining and leaving: 1, 2, 3, 2, 1, then cleared', () => {
    const legs = new Map<string, LegFacts>();
    const levels: Array<number | null> = [];
    const observe = () => levels.push(meetingLevel(legs.values(), policy).level);
    const end = (id: string) => legs.set(id, { ...legs.get(id)!, endedAt: '2025-01-01T11:00:00Z' });

    legs.set('a', secure('a'));
    observe();
    legs.set('b', internal('b'));
    observe();
    legs.set('c', external('c'));
    observe();
    end('c');
    observe();
    end('b');
    observe();
    end('a');
    observe();

    assert.deepEqual(levels, [1, 2, 3, 2, 1, null]);
    assert.deepEqual(desiredMessage(meetingLevel(legs.values(), policy).level, policy), { messageText: '', messageDuration: '0' });
  });
});
