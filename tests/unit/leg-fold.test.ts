import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCdrBatch } from '@cms/cdr';
import { extendsLeg, foldLeg, foldOnto, type LegRecord, SEQ_SEVERAL_SESSIONS } from '../../services/policy-worker/src/storage/leg-fold.ts';
import { legLifecycleRecords, recordsXml, type TestRecord } from '../helpers/cdr-xml.ts';

const LEG = 'fc9c85ca-8c41-4a1a-9252-b16977d1e4e1';
const CALL = '46d49cb4-8171-4abc-97f5-b88035b1da0a';

function legRecords(records: TestRecord[]): LegRecord[] {
  const batch = parseCdrBatch(recordsXml({ session: 's1', records }));
  return batch.records.map((r) => ({
    session: 's1',
    correlatorIndex: r.correlatorIndex,
    type: r.type,
    time: r.time,
    node: 'cms1',
    callBridge: null,
    raw: r.raw,
  }));
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

const lifecycle = legLifecycleRecords({ leg: LEG, call: CALL });

describe('foldLeg', () => {
  test('gives the same row for every arrival order of the same records', () => {
    const records = legRecords(lifecycle);
    const expected = foldLeg(LEG, records);
    for (const order of permutations(records)) assert.deepEqual(foldLeg(LEG, order), expected);
  });

  test('applies updates in correlatorIndex order: the later lobby state and name win', () => {
    const row = foldLeg(LEG, legRecords(lifecycle).reverse());
    assert.equal(row.deactivated, false);
    assert.equal(row.displayName, 'Alice');
    assert.equal(row.callId, CALL);
    assert.equal(row.inIvr, false);
    assert.equal(row.state, 'connected');
    assert.equal(row.connectedAt, '2026-11-21T09:00:10Z');
  });

  test('keeps text exactly as sent (leading zeros)', () => {
    assert.equal(foldLeg(LEG, legRecords(lifecycle)).remoteParty, '0701234567@corp.example.com');
  });

  test('ends the leg when callLegEnd arrives first, with its reason and quality data', () => {
    const [, , , , end] = legRecords(lifecycle);
    const row = foldLeg(LEG, [end as LegRecord]);
    assert.equal(row.endedAt, '2026-11-21T09:30:00Z');
    assert.equal(row.endReason, 'remoteTeardown');
    assert.equal(row.durationSeconds, 1790);
    assert.equal(row.encryptedMedia, true);
    assert.deepEqual(row.quality, { alarm: { '@type': 'packetLoss', '@durationPercentage': '0.1' } });
    assert.equal(row.startedAt, undefined);
  });

  test('marks a leg in an IVR until an update puts it in a call', () => {
    const row = foldLeg(LEG, legRecords(lifecycle.slice(0, 2)));
    assert.equal(row.inIvr, true);
    assert.equal(row.callId, undefined);
  });
});

describe('folding records onto a stored row', () => {
  test('gives what folding every record gives, wherever the stored row was cut', () => {
    const records = legRecords(lifecycle);
    const expected = foldLeg(LEG, records);
    for (let cut = 1; cut < records.length; cut++) {
      const stored = foldLeg(LEG, records.slice(0, cut));
      const later = records.slice(cut);
      assert.ok(extendsLeg(stored, later), `records after ${cut} extend the row`);
      assert.deepEqual(foldOnto(stored, later), expected);
    }
  });

  test('is refused for records that are not all past the row (late, re-sent or from another session)', () => {
    const records = legRecords(lifecycle);
    const stored = foldLeg(LEG, records.slice(0, 3));
    assert.equal(extendsLeg(stored, [records[1] as LegRecord]), false, 'a late record');
    assert.equal(extendsLeg(stored, [records[2] as LegRecord]), false, 'a re-sent record');
    assert.equal(extendsLeg(stored, [records[3] as LegRecord, records[0] as LegRecord]), false, 'one late record among new ones');
    assert.equal(extendsLeg(stored, [{ ...(records[3] as LegRecord), session: 's2' }]), false, 'another session');
    assert.equal(extendsLeg(undefined, [records[3] as LegRecord]), false, 'no stored row');
  });

  test('is refused for a leg that has ended (reconciliation can end a leg without a record)', () => {
    const records = legRecords(lifecycle);
    const stored = { ...foldLeg(LEG, records.slice(0, 3)), endedAt: '2026-11-21T09:10:00Z' };
    assert.equal(extendsLeg(stored, [records[3] as LegRecord]), false);
  });

  test('is refused for ever once a leg has records from two sessions', () => {
    const [first, second] = legRecords(lifecycle);
    const mixed = foldLeg(LEG, [first as LegRecord, { ...(second as LegRecord), session: 's2' }]);
    assert.equal(mixed.seq, SEQ_SEVERAL_SESSIONS);
    assert.equal(extendsLeg(mixed, [{ ...(second as LegRecord), correlatorIndex: 1_000_000 }]), false);
  });
});
