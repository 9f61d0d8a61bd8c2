import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCdrBatch, recordFields, type XmlObject } from '@cms/cdr';
import { cdrFixture } from '../fixtures/cdr/index.ts';

function rawRecords(fixture: string): XmlObject[] {
  return parseCdrBatch(cdrFixture(fixture)).records.map((record) => record.raw);
}

describe('recordFields presents a record under Cisco field names', () => {
  test('the callLegEnd quality record: fields without "@id", alarms as {type, durationPercentage}', () => {
    const [raw] = rawRecords('call-leg-end-quality.xml');
    assert.deepEqual(recordFields(raw!), {
      objectKind: 'callLeg',
      objectId: 'aa7c3c54-07d6-4af3-b853-a25fe676e554',
      fields: {
        reason: 'remoteTeardown',
        remoteTeardown: 'true',
        durationSeconds: '3912',
        activatedDuration: '3912',
        mediaUsagePercentages: { mainVideoViewer: '99.9', mainVideoContributor: '99.9' },
        alarm: [
          { type: 'packetLoss', durationPercentage: '0.1' },
          { type: 'excessiveJitter', durationPercentage: '0.0' },
        ],
        encryptedMedia: 'true',
        rxAudio: { codec: 'opus' },
        txAudio: { codec: 'opus' },
        rxVideo: { codec: 'h264', maxSizeWidth: '1280', maxSizeHeight: '720' },
      },
    });
  });

  test('a single <alarm> is still an array', () => {
    const raw = rawRecords('all-record-types.xml').find((record) => record['@type'] === 'callLegEnd')!;
    assert.deepEqual(recordFields(raw).fields['alarm'], [{ type: 'highRoundTripTime', durationPercentage: '1.4' }]);
  });

  test('an <alarm> without attributes still has both keys, as null', () => {
    const raw: XmlObject = { '@type': 'callLegEnd', callLeg: { '@id': 'l1', alarm: null } };
    assert.deepEqual(recordFields(raw).fields['alarm'], [{ type: null, durationPercentage: null }]);
  });

  test('callStart fields, with an empty ownerName as null', () => {
    const raw = rawRecords('all-record-types.xml').find((record) => record['@type'] === 'callStart')!;
    const view = recordFields(raw);
    assert.equal(view.objectKind, 'call');
    assert.equal(view.objectId, 'c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8');
    assert.equal(view.fields['ownerName'], null);
    assert.equal(view.fields['callCorrelator'], 'fa1b2c3d-4e5f-4607-8a9b-0c1d2e3f4a5b');
    assert.equal(Object.hasOwn(view.fields, '@id'), false);
  });

  test('recordingEnd has no fields besides its id', () => {
    const raw = rawRecords('all-record-types.xml').find((record) => record['@type'] === 'recordingEnd')!;
    assert.deepEqual(recordFields(raw), { objectKind: 'recording', objectId: '8d7c6b5a-4938-4271-8605-f4e3d2c1b0a9', fields: {} });
  });

  test('other attributes lose their "@", at any depth, unless a child element has the same name', () => {
    const raw: XmlObject = {
      '@type': 'callLegStart',
      callLeg: { '@id': 'l1', '@version': '2', displayName: { '@lang': 'sv', '#text': 'Åsa' }, codec: { '@name': 'a', name: 'b' } },
    };
    assert.deepEqual(recordFields(raw).fields, {
      version: '2',
      displayName: { lang: 'sv', '#text': 'Åsa' },
      codec: { '@name': 'a', name: 'b' },
    });
  });

  test('an unknown record type without a known element shows its own children', () => {
    const raw = rawRecords('unknown-type.xml').find((record) => record['@type'] === 'meetingInsight')!;
    assert.deepEqual(recordFields(raw), { objectKind: null, objectId: null, fields: { insight: { score: '5' } } });
  });

  test('an unknown record type with a <callLeg id> shows the leg', () => {
    const raw = rawRecords('unknown-type.xml').find((record) => record['@type'] === 'callLegMoved')!;
    assert.deepEqual(recordFields(raw), {
      objectKind: 'callLeg',
      objectId: '9e8d7c6b-5a49-4382-a716-05f4e3d2c1b0',
      fields: { call: 'c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8', newField: 'value' },
    });
  });

  test('raw is not modified', () => {
    const [raw] = rawRecords('call-leg-end-quality.xml');
    const before = structuredClone(raw!);
    recordFields(raw!);
    assert.deepEqual(raw, before);
  });

  test('an attribute named __proto__ becomes an own field, not a prototype', () => {
    const batch = parseCdrBatch(
      '<records session="s1"><record type="callEnd" time="2024-03-11T10:00:00Z" recordIndex="1" correlatorIndex="0">' +
        '<call id="c1" __proto__="x"/></record></records>',
    );
    const fields = recordFields(batch.records[0]!.raw).fields;
    assert.equal(Object.getPrototypeOf(fields), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(fields, '__proto__')?.value, 'x');
  });
});
