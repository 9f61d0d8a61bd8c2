import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CdrBatch, parseCdrBatch } from '@cms/cdr';
import { cdrFixture } from '../fixtures/cdr/index.ts';

/** A batch around one record, `attributes` and `content` as CMS would write them. */
function oneRecord(attributes: string, content = '<call id="c1"/>'): CdrBatch {
  return parseCdrBatch(`<records session="s1"><record ${attributes}>${content}</record></records>`);
}

function reasonFor(attributes: string, content?: string): string {
  const batch = oneRecord(attributes, content);
  assert.equal(batch.records.length, 0, 'the record is not accepted');
  assert.equal(batch.rejected.length, 1);
  return batch.rejected[0]!.reason;
}

const VALID = 'type="callEnd" time="2024-03-11T10:00:00Z" recordIndex="1" correlatorIndex="0"';

describe('a batch with valid and invalid records', () => {
  const batch = parseCdrBatch(cdrFixture('mixed-valid-invalid.xml'));

  test('the valid records are returned', () => {
    assert.deepEqual(
      batch.records.map((record) => [record.type, record.correlatorIndex]),
      [
        ['callStart', 0],
        ['callEnd', 9],
      ],
    );
  });

  test('recordIndex 0 is accepted and numPreceedingRecordsMissing read', () => {
    const record = batch.records[1]!;
    assert.equal(record.recordIndex, 0);
    assert.equal(record.numPreceedingRecordsMissing, 12);
  });

  test('each invalid record is rejected with its position, a reason naming the problem, and its raw value', () => {
    assert.deepEqual(
      batch.rejected.map(({ position, reason }) => ({ position, reason })),
      [
        { position: 1, reason: 'record has no type attribute' },
        { position: 2, reason: 'callLegStart record time "11/03/2024 09:00" is not an RFC 3339 timestamp' },
        { position: 3, reason: 'callLegStart record correlatorIndex "-3" is not a non-negative integer' },
        { position: 4, reason: 'callLegEnd record recordIndex "five" is not a non-negative integer' },
        { position: 5, reason: 'callLegUpdate record has no <callLeg> element' },
        { position: 6, reason: '<call> in callEnd record has no id attribute' },
        { position: 7, reason: 'callEnd record numPreceedingRecordsMissing "1.5" is not a non-negative integer' },
        { position: 8, reason: 'record is empty: no attributes and no elements' },
      ],
    );
  });

  test('a rejected record keeps its raw value in xmltodict form', () => {
    assert.deepEqual(batch.rejected[0]!.raw, {
      '@time': '2024-03-11T09:00:01Z',
      '@recordIndex': '2',
      '@correlatorIndex': '1',
      call: { '@id': 'c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8' },
    });
    assert.equal(batch.rejected[7]!.raw, null);
  });
});

describe('record attributes', () => {
  test('a record without time is rejected', () => {
    assert.equal(reasonFor('type="callEnd" recordIndex="1" correlatorIndex="0"'), 'callEnd record has no time attribute');
  });

  test('a time without a zone is rejected', () => {
    assert.match(reasonFor('type="callEnd" time="2024-03-11T10:00:00" recordIndex="1" correlatorIndex="0"'), /not an RFC 3339 timestamp/);
  });

  test('a time on a day that does not exist is rejected', () => {
    assert.match(reasonFor('type="callEnd" time="2023-02-29T10:00:00Z" recordIndex="1" correlatorIndex="0"'), /not an RFC 3339 timestamp/);
  });

  test('a record without recordIndex is rejected', () => {
    assert.equal(
      reasonFor('type="callEnd" time="2024-03-11T10:00:00Z" correlatorIndex="0"'),
      'callEnd record has no recordIndex attribute',
    );
  });

  test('a record without correlatorIndex is rejected', () => {
    assert.equal(
      reasonFor('type="callEnd" time="2024-03-11T10:00:00Z" recordIndex="1"'),
      'callEnd record has no correlatorIndex attribute',
    );
  });

  test('a correlatorIndex beyond the safe integer range is rejected', () => {
    assert.match(
      reasonFor('type="callEnd" time="2024-03-11T10:00:00Z" recordIndex="1" correlatorIndex="99999999999999999999"'),
      /correlatorIndex/,
    );
  });

  test('a numPreceedingRecordsMissing that does not fit the database column is rejected', () => {
    assert.equal(
      reasonFor(`${VALID} numPreceedingRecordsMissing="4294967296"`),
      'callEnd record numPreceedingRecordsMissing 4294967296 is out of range',
    );
  });

  test('leading zeros in an index are read as the number', () => {
    assert.equal(oneRecord('type="callEnd" time="2024-03-11T10:00:00Z" recordIndex="007" correlatorIndex="0"').records[0]!.recordIndex, 7);
  });
});

describe('the element a record describes', () => {
  test('a documented type with two of its elements is rejected', () => {
    assert.equal(reasonFor(VALID, '<call id="c1"/><call id="c2"/>'), 'callEnd record has 2 <call> elements, expected one');
  });

  test('an element with an empty id is rejected', () => {
    assert.equal(reasonFor(VALID, '<call id=""/>'), '<call> in callEnd record has no id attribute');
  });

  test('a callLeg record whose <call> field is empty has no call id', () => {
    const batch = oneRecord(
      'type="callLegUpdate" time="2024-03-11T10:00:00Z" recordIndex="1" correlatorIndex="0"',
      '<callLeg id="l1"><call></call></callLeg>',
    );
    assert.equal(batch.records[0]!.callId, null);
    assert.equal(batch.records[0]!.callLegId, 'l1');
  });
});
