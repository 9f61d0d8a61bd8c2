import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CdrRecord, parseCdrBatch, RECORD_TYPES } from '@cms/cdr';
import { cdrFixture } from '../fixtures/cdr/index.ts';

function only(records: CdrRecord[], type: string): CdrRecord {
  const found = records.filter((record) => record.type === type);
  assert.equal(found.length, 1, `one ${type} record`);
  return found[0]!;
}

describe("Cisco's documented flow (cms-interfaces.md 1.4)", () => {
  test('the first POST carries a callLegStart whose call is not known yet', () => {
    const batch = parseCdrBatch(cdrFixture('cisco-flow-1.xml'));
    assert.equal(batch.session, 'a865433a-4926-4549-a701-9bb5b93c75e6');
    assert.equal(batch.callBridge, '158ba4f7-70eb-4a35-982c-71d4f1674277');
    assert.deepEqual(batch.rejected, []);
    assert.equal(batch.records.length, 1);
    const { raw, ...record } = batch.records[0]!;
    assert.deepEqual(record, {
      type: 'callLegStart',
      time: '2015-07-23T07:32:55Z',
      recordIndex: 1,
      correlatorIndex: 0,
      numPreceedingRecordsMissing: null,
      objectKind: 'callLeg',
      objectId: 'fc9c85ca-8c41-4a1a-9252-b16977d1e4e1',
      callId: null,
      callLegId: 'fc9c85ca-8c41-4a1a-9252-b16977d1e4e1',
      callCorrelator: null,
    });
    assert.deepEqual(raw['callLeg'], {
      '@id': 'fc9c85ca-8c41-4a1a-9252-b16977d1e4e1',
      remoteParty: 'sipclient1@example.com',
      localAddress: 'access1@127.0.0.1',
      type: 'sip',
      direction: 'incoming',
      groupId: '18da80f3-8a71-4255-aa90-e1677b99b588',
      sipCallId: 'b8a81da5-c24c-43db-ba58-742f587faec8',
    });
  });

  test('the second POST carries the callStart and the callLegUpdate that ties the leg to its call', () => {
    const batch = parseCdrBatch(cdrFixture('cisco-flow-2.xml'));
    assert.deepEqual(
      batch.records.map(({ raw: _raw, ...record }) => record),
      [
        {
          type: 'callStart',
          time: '2015-07-23T07:32:55Z',
          recordIndex: 2,
          correlatorIndex: 1,
          numPreceedingRecordsMissing: null,
          objectKind: 'call',
          objectId: '46d49cb4-8171-4abc-97f5-b88035b1da0a',
          callId: '46d49cb4-8171-4abc-97f5-b88035b1da0a',
          callLegId: null,
          callCorrelator: '5f3300c5-ca67-40e0-a503-91baec70dbbe',
        },
        {
          type: 'callLegUpdate',
          time: '2015-07-23T07:32:55Z',
          recordIndex: 3,
          correlatorIndex: 2,
          numPreceedingRecordsMissing: null,
          objectKind: 'callLeg',
          objectId: 'fc9c85ca-8c41-4a1a-9252-b16977d1e4e1',
          callId: '46d49cb4-8171-4abc-97f5-b88035b1da0a',
          callLegId: 'fc9c85ca-8c41-4a1a-9252-b16977d1e4e1',
          callCorrelator: null,
        },
      ],
    );
    assert.deepEqual(batch.rejected, []);
  });
});

describe('the nine record types', () => {
  const batch = parseCdrBatch(cdrFixture('all-record-types.xml'));
  const callId = 'c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8';
  const legId = '1e2d3c4b-5a69-4788-9a0b-c1d2e3f4a5b6';

  test('a batch with one record of every documented type is accepted whole, in document order', () => {
    assert.deepEqual(batch.rejected, []);
    assert.deepEqual(
      batch.records.map((record) => record.type),
      [
        'callStart',
        'callLegStart',
        'callLegUpdate',
        'recordingStart',
        'streamingStart',
        'recordingEnd',
        'streamingEnd',
        'callLegEnd',
        'callEnd',
      ],
    );
    assert.deepEqual(new Set(batch.records.map((record) => record.type)), new Set(RECORD_TYPES));
    assert.deepEqual(
      batch.records.map((record) => record.correlatorIndex),
      [100, 101, 102, 103, 104, 105, 106, 107, 108],
    );
  });

  test('callStart gives the call id, callCorrelator and its fields as text', () => {
    const record = only(batch.records, 'callStart');
    assert.equal(record.objectKind, 'call');
    assert.equal(record.callId, callId);
    assert.equal(record.callLegId, null);
    assert.equal(record.callCorrelator, 'fa1b2c3d-4e5f-4607-8a9b-0c1d2e3f4a5b');
    assert.deepEqual(record.raw['call'], {
      '@id': callId,
      name: 'Board meeting',
      ownerName: null,
      callType: 'coSpace',
      coSpace: '5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716',
      tenant: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
      cdrTag: 'board',
      callCorrelator: 'fa1b2c3d-4e5f-4607-8a9b-0c1d2e3f4a5b',
    });
  });

  test('callEnd gives the call id and keeps counters as text', () => {
    const record = only(batch.records, 'callEnd');
    assert.equal(record.callId, callId);
    assert.equal(record.objectId, callId);
    assert.equal(record.callCorrelator, null);
    assert.deepEqual(record.raw['call'], {
      '@id': callId,
      callLegsCompleted: '7',
      callLegsMaxActive: '5',
      durationSeconds: '3600',
      endpointRecorded: 'false',
    });
  });

  test('callLegStart gives the leg id and the call it names', () => {
    const record = only(batch.records, 'callLegStart');
    assert.equal(record.objectKind, 'callLeg');
    assert.equal(record.callLegId, legId);
    assert.equal(record.callId, callId);
  });

  test('callLegStart keeps leading zeros and does not coerce "true" or "false"', () => {
    const leg = only(batch.records, 'callLegStart').raw['callLeg'] as Record<string, unknown>;
    assert.equal(leg['remoteParty'], '0701234567@example.com');
    assert.equal(leg['remoteAddress'], '0701234567@example.com');
    assert.equal(leg['canMove'], 'true');
    assert.equal(leg['guestConnection'], 'false');
    assert.equal(leg['recording'], 'false');
  });

  test('callLegUpdate with an empty <ivr/> has no call and shows ivr as null', () => {
    const record = only(batch.records, 'callLegUpdate');
    assert.equal(record.callLegId, legId);
    assert.equal(record.callId, null);
    const leg = record.raw['callLeg'] as Record<string, unknown>;
    assert.equal(leg['ivr'], null);
    assert.ok(Object.hasOwn(leg, 'ivr'));
    assert.equal(leg['deactivated'], 'true');
    assert.equal(leg['ownerId'], null);
  });

  test('callLegEnd gives the leg id, and a single <alarm> stays an object as xmltodict gives it', () => {
    const record = only(batch.records, 'callLegEnd');
    assert.equal(record.callLegId, legId);
    assert.equal(record.callId, null);
    const leg = record.raw['callLeg'] as Record<string, unknown>;
    assert.deepEqual(leg['alarm'], { '@type': 'highRoundTripTime', '@durationPercentage': '1.4' });
    assert.deepEqual(leg['rxAudio'], {
      codec: 'opus',
      packetStatistics: {
        packetLossBursts: { duration: '0.0', density: '0.00' },
        packetGap: { duration: '3.2', density: '0.05' },
      },
    });
    assert.deepEqual(leg['txVideo'], { codec: 'h264', maxSizeWidth: '1280', maxSizeHeight: '720' });
  });

  test('recordingStart and streamingStart name their call and call leg', () => {
    const recording = only(batch.records, 'recordingStart');
    assert.equal(recording.objectKind, 'recording');
    assert.equal(recording.objectId, '8d7c6b5a-4938-4271-8605-f4e3d2c1b0a9');
    assert.equal(recording.callId, callId);
    assert.equal(recording.callLegId, '2f3e4d5c-6b7a-4899-8a1b-2c3d4e5f6a7b');
    const streaming = only(batch.records, 'streamingStart');
    assert.equal(streaming.objectKind, 'streaming');
    assert.equal(streaming.objectId, '6a5b4c3d-2e1f-4a09-b8c7-d6e5f4a3b2c1');
    assert.equal(streaming.callId, callId);
    assert.equal(streaming.callLegId, '3a4b5c6d-7e8f-4901-a2b3-c4d5e6f7a8b9');
  });

  test('recordingEnd and streamingEnd carry only their id', () => {
    const recording = only(batch.records, 'recordingEnd');
    assert.deepEqual(
      [recording.objectKind, recording.objectId, recording.callId, recording.callLegId],
      ['recording', '8d7c6b5a-4938-4271-8605-f4e3d2c1b0a9', null, null],
    );
    assert.deepEqual(recording.raw['recording'], { '@id': '8d7c6b5a-4938-4271-8605-f4e3d2c1b0a9' });
    const streaming = only(batch.records, 'streamingEnd');
    assert.deepEqual([streaming.objectKind, streaming.objectId], ['streaming', '6a5b4c3d-2e1f-4a09-b8c7-d6e5f4a3b2c1']);
  });
});

describe('what the body may look like', () => {
  test('a body without XML declaration, with CRLF, tabs, blank lines and a comment parses, text trimmed', () => {
    const batch = parseCdrBatch(cdrFixture('no-declaration-whitespace.xml'));
    assert.equal(batch.session, 'd3c2b1a0-9f8e-4d7c-b6a5-948372615041');
    assert.equal(batch.records.length, 1);
    assert.deepEqual(batch.records[0]!.raw['call'], {
      '@id': 'c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8',
      callLegsCompleted: '2',
      callLegsMaxActive: '2',
      durationSeconds: '60',
    });
  });

  test('a string body parses the same as the bytes', () => {
    const bytes = cdrFixture('cisco-flow-2.xml');
    assert.deepEqual(parseCdrBatch(bytes.toString('utf8')), parseCdrBatch(bytes));
  });

  test('a UTF-8 byte order mark is tolerated', () => {
    const bytes = cdrFixture('cisco-flow-1.xml');
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
    assert.deepEqual(parseCdrBatch(withBom), parseCdrBatch(bytes));
    assert.deepEqual(parseCdrBatch(`\ufeff${bytes.toString('utf8')}`), parseCdrBatch(bytes));
  });

  test('a UTF-16 body with its byte order mark is decoded', () => {
    const text = cdrFixture('cisco-flow-1.xml').toString('utf8');
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    assert.deepEqual(parseCdrBatch(utf16), parseCdrBatch(text));
  });

  test('predefined entities and numeric character references are decoded, CDATA is kept literally', () => {
    const batch = parseCdrBatch(cdrFixture('entities.xml'));
    const call = batch.records[0]!.raw['call'] as Record<string, unknown>;
    assert.equal(call['name'], 'R&D <weekly> "sync" \'24 café 📞');
    assert.equal(call['cdrTag'], 'a&amp;b', 'decoded once, not twice');
    assert.equal(call['coSpace'], 'literal &amp; <kept>');
    const leg = batch.records[1]!.raw['callLeg'] as Record<string, unknown>;
    assert.deepEqual(leg['displayName'], { '@lang': 'sv&en', '#text': 'Åsa & Örjan' });
    assert.equal(leg['remoteParty'], 'sip:"guest"@example.com');
  });

  test('entities in <records> attributes are decoded', () => {
    const batch = parseCdrBatch('<records session="a&amp;b" callBridge="&#x63;b1"></records>');
    assert.equal(batch.session, 'a&b');
    assert.equal(batch.callBridge, 'cb1');
  });

  test('a <records> without callBridge (not clustered) gives callBridge null', () => {
    assert.equal(parseCdrBatch(cdrFixture('call-leg-end-quality.xml')).callBridge, null);
  });

  test('a <records> with no <record> is a valid empty batch', () => {
    assert.deepEqual(parseCdrBatch('<records session="a865433a-4926-4549-a701-9bb5b93c75e6"/>'), {
      session: 'a865433a-4926-4549-a701-9bb5b93c75e6',
      callBridge: null,
      records: [],
      rejected: [],
    });
  });

  test('children of <records> other than <record> are ignored', () => {
    const batch = parseCdrBatch(
      '<records session="s1"><note>hi</note><record type="callEnd" time="2024-03-11T10:00:00Z" recordIndex="1" correlatorIndex="0">' +
        '<call id="c1"/></record><extra a="1"/>text</records>',
    );
    assert.deepEqual(
      batch.records.map((record) => record.objectId),
      ['c1'],
    );
    assert.deepEqual(batch.rejected, []);
  });

  test('numPreceedingRecordsMissing is read when CMS sets it', () => {
    const batch = parseCdrBatch(
      '<records session="s1"><record type="callEnd" time="2024-03-11T10:00:00Z" recordIndex="7" correlatorIndex="12" ' +
        'numPreceedingRecordsMissing="5"><call id="c1"/></record></records>',
    );
    assert.equal(batch.records[0]!.numPreceedingRecordsMissing, 5);
  });

  test('a time with a numeric offset is accepted as sent', () => {
    const batch = parseCdrBatch(
      '<records session="s1"><record type="callEnd" time="2024-03-11T11:00:00.250+01:00" recordIndex="1" correlatorIndex="0">' +
        '<call id="c1"/></record></records>',
    );
    assert.equal(batch.records[0]!.time, '2024-03-11T11:00:00.250+01:00');
  });
});

describe('record types from later CMS releases', () => {
  const batch = parseCdrBatch(cdrFixture('unknown-type.xml'));

  test('an unknown record type is kept, not rejected', () => {
    assert.deepEqual(batch.rejected, []);
    assert.deepEqual(
      batch.records.map((record) => record.type),
      ['callLegMoved', 'meetingInsight'],
    );
  });

  test('an unknown type with a <callLeg id> is indexed by that leg and its call', () => {
    const record = batch.records[0]!;
    assert.equal(record.objectKind, 'callLeg');
    assert.equal(record.objectId, '9e8d7c6b-5a49-4382-a716-05f4e3d2c1b0');
    assert.equal(record.callLegId, '9e8d7c6b-5a49-4382-a716-05f4e3d2c1b0');
    assert.equal(record.callId, 'c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8');
  });

  test('an unknown type with no known element has no object and keeps everything in raw', () => {
    const record = batch.records[1]!;
    assert.deepEqual([record.objectKind, record.objectId, record.callId, record.callLegId], [null, null, null, null]);
    assert.deepEqual(record.raw['insight'], { score: '5' });
  });
});
