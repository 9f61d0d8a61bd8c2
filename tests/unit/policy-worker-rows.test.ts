/**
 * The pure helpers the policy worker builds its rows with: call patches (calls), which leg changes can change a
 * meeting's level (call_legs), quarantine rows, and the CDR field readers. The Postgres side is in
 * tests/integration/policy-worker-storage.test.ts and policy-worker-poison.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CdrRecord, parseCdrBatch } from '@cms/cdr';
import type { ReceivedCdrBatch } from '@cms/queue';
import { callPatch, mergeCallPatches } from '../../services/policy-worker/src/storage/call-patch.ts';
import type { LegRow } from '../../services/policy-worker/src/storage/leg-fold.ts';
import { policyFactsChanged } from '../../services/policy-worker/src/storage/legs.ts';
import { quarantineRow } from '../../services/policy-worker/src/storage/quarantine.ts';
import { bool, childObject, has, int, text } from '../../services/policy-worker/src/storage/xml-fields.ts';

function record(xml: string): CdrRecord {
  const batch = parseCdrBatch(`<records session="s1">${xml}</records>`);
  assert.equal(batch.rejected.length, 0, JSON.stringify(batch.rejected));
  return batch.records[0]!;
}

const callStart = record(
  '<record type="callStart" time="2026-01-01T10:00:00Z" recordIndex="1" correlatorIndex="1"><call id="c1"><name>Weekly</name><callType>coSpace</callType><coSpace>space-1</coSpace><callCorrelator>corr-1</callCorrelator></call></record>',
);
const callEnd = record(
  '<record type="callEnd" time="2026-01-01T11:00:00Z" recordIndex="9" correlatorIndex="9"><call id="c1"><callLegsCompleted>3</callLegsCompleted><callLegsMaxActive>2</callLegsMaxActive><durationSeconds>3600</durationSeconds></call></record>',
);
const legStart = record(
  '<record type="callLegStart" time="2026-01-01T10:01:00Z" recordIndex="2" correlatorIndex="2"><callLeg id="l1"><remoteParty>a@corp.com</remoteParty><call>c1</call></callLeg></record>',
);

describe('callPatch', () => {
  test('callStart sets what the call is, with its callCorrelator', () => {
    const patch = callPatch(callStart, 'cms1', 'cb-1', 's1');
    assert.deepEqual(patch, {
      id: 'c1',
      node: 'cms1',
      callBridge: 'cb-1',
      session: 's1',
      name: 'Weekly',
      ownerName: null,
      callType: 'coSpace',
      coSpace: 'space-1',
      tenant: null,
      cdrTag: null,
      callCorrelator: 'corr-1',
      startedAt: '2026-01-01T10:00:00Z',
    });
  });

  test('callEnd sets how it went', () => {
    assert.deepEqual(callPatch(callEnd, 'cms1', null, 's1'), {
      id: 'c1',
      node: 'cms1',
      callBridge: null,
      session: 's1',
      endedAt: '2026-01-01T11:00:00Z',
      callLegsCompleted: 3,
      callLegsMaxActive: 2,
      durationSeconds: 3600,
      endpointRecorded: null,
    });
  });

  test('a record of another object naming a call gives only where the call is', () => {
    assert.deepEqual(callPatch(legStart, 'cms1', null, 's1'), { id: 'c1', node: 'cms1', callBridge: null, session: 's1' });
  });

  test('a record naming no call gives nothing', () => {
    const recording = record(
      '<record type="recordingEnd" time="2026-01-01T10:30:00Z" recordIndex="5" correlatorIndex="5"><recording id="r1"/></record>',
    );
    assert.equal(callPatch(recording, 'cms1', null, 's1'), null);
  });
});

describe('mergeCallPatches', () => {
  test('start and end merge to the same row in either order', () => {
    const start = callPatch(callStart, 'cms1', null, 's1')!;
    const end = callPatch(callEnd, 'cms1', null, 's1')!;
    const merged = mergeCallPatches(start, end);
    assert.deepEqual(mergeCallPatches(end, start), merged);
    assert.equal(merged.callCorrelator, 'corr-1');
    assert.equal(merged.endedAt, '2026-01-01T11:00:00Z');
  });

  test('the first non-null value of a field wins', () => {
    const merged = mergeCallPatches({ id: 'c1', node: null, name: 'First' }, { id: 'c1', node: 'cms2', name: 'Second' });
    assert.deepEqual(merged, { id: 'c1', node: 'cms2', name: 'First' });
  });
});

describe('policyFactsChanged', () => {
  const row: LegRow = { id: 'l1', callId: 'c1', remoteParty: 'a@corp.com', state: 'connected', connectedAt: '2026-01-01T10:01:00Z' };

  test('a new leg changes its meeting', () => {
    assert.equal(policyFactsChanged(undefined, row), true);
  });

  test('facts the policy does not read change nothing (a re-sent connected, a new sipCallId or display name)', () => {
    assert.equal(policyFactsChanged(row, { ...row }), false);
    assert.equal(policyFactsChanged(row, { ...row, sipCallId: 'x', displayName: 'Alice', seq: 7 }), false);
    assert.equal(policyFactsChanged(row, { ...row, connectedAt: '2026-01-01T10:00:00Z' }), false, 'an earlier connect time');
  });

  test('each fact the policy reads changes it', () => {
    const changes: Partial<LegRow>[] = [
      { callId: 'c2' },
      { type: 'acano' },
      { subType: 'distributionLink' },
      { guestConnection: true },
      { remoteParty: 'b@elsewhere.net' },
      { remoteAddress: 'sip:b@elsewhere.net' },
      { state: 'onHold' },
      { inIvr: true },
      { deactivated: true },
    ];
    for (const change of changes) assert.equal(policyFactsChanged(row, { ...row, ...change }), true, JSON.stringify(change));
  });

  test('connecting and ending change it; null and absent are the same fact', () => {
    assert.equal(policyFactsChanged({ ...row, connectedAt: null }, row), true);
    assert.equal(policyFactsChanged(row, { ...row, endedAt: '2026-01-01T10:30:00Z' }), true);
    assert.equal(policyFactsChanged({ ...row, inIvr: null }, { ...row }), false);
  });
});

describe('quarantineRow', () => {
  const job = (session: string, node: string | null = 'cms1'): ReceivedCdrBatch => ({
    node,
    receivedAt: '2026-01-01T10:00:00Z',
    batch: { session, callBridge: null, records: [], rejected: [] },
  });

  test('keeps the record and the reason, keyed on session and content', () => {
    const row = quarantineRow(job('s1'), 3, 'bad time', { '@type': 'callEnd' });
    assert.deepEqual(
      { ...row, dedupeKey: typeof row.dedupeKey },
      {
        session: 's1',
        callBridge: null,
        node: 'cms1',
        position: 3,
        reason: 'bad time',
        raw: { '@type': 'callEnd' },
        dedupeKey: 'string',
      },
    );
    assert.equal(quarantineRow(job('s1'), 7, 'other', { '@type': 'callEnd' }).dedupeKey, row.dedupeKey, 'the same record re-sent');
    assert.notEqual(quarantineRow(job('s2'), 3, 'bad time', { '@type': 'callEnd' }).dedupeKey, row.dedupeKey);
    assert.notEqual(quarantineRow(job('s1'), 3, 'bad time', { '@type': 'callStart' }).dedupeKey, row.dedupeKey);
  });

  test('characters Postgres cannot store become U+FFFD, the reason says so, the key is from the record as sent', () => {
    const raw = { 'a\u0000': ['x\uD800'] };
    const row = quarantineRow(job('s\u00001'), 0, 'bad', raw);
    assert.equal(row.session, 's\uFFFD1');
    assert.deepEqual(row.raw, { 'a\uFFFD': ['x\uFFFD'] });
    assert.match(row.reason, /^bad \(characters that cannot be stored/);
    // Two records that differ only in those characters stay two quarantine rows.
    assert.notEqual(row.dedupeKey, quarantineRow(job('s\u00001'), 0, 'bad', { 'a\uFFFD': ['x\uFFFD'] }).dedupeKey);
  });
});

describe('CDR field readers', () => {
  const leg = { '@id': 'l1', remoteParty: 'a@corp.com', empty: '', state: { '#text': 'connected', '@x': 'y' }, ivr: '', n: '42' };

  test('childObject: the object of a kind, or null for text and lists', () => {
    assert.deepEqual(childObject({ callLeg: leg }, 'callLeg'), leg);
    assert.equal(childObject({ callLeg: 'text' }, 'callLeg'), null);
    assert.equal(childObject({ callLeg: [leg, leg] }, 'callLeg'), null);
    assert.equal(childObject({}, 'callLeg'), null);
  });

  test('text: a value, the text of an element with attributes; empty and missing are null', () => {
    assert.equal(text(leg, 'remoteParty'), 'a@corp.com');
    assert.equal(text(leg, 'state'), 'connected');
    assert.equal(text(leg, 'empty'), null);
    assert.equal(text(leg, 'missing'), null);
    assert.equal(text(null, 'remoteParty'), null);
  });

  test('has: an empty element is present', () => {
    assert.equal(has(leg, 'ivr'), true);
    assert.equal(has(leg, 'missing'), false);
    assert.equal(has(null, 'ivr'), false);
  });

  test('bool: only "true" and "false"', () => {
    assert.equal(bool({ v: 'true' }, 'v'), true);
    assert.equal(bool({ v: 'false' }, 'v'), false);
    for (const v of ['TRUE', '1', 'yes', '']) assert.equal(bool({ v }, 'v'), null, v);
  });

  test('int: whole numbers that fit an integer column', () => {
    assert.equal(int(leg, 'n'), 42);
    assert.equal(int({ v: '-7' }, 'v'), -7);
    assert.equal(int({ v: '2147483647' }, 'v'), 2_147_483_647);
    for (const v of ['2147483648', '1.5', '1e3', 'x', '']) assert.equal(int({ v }, 'v'), null, v);
  });
});
