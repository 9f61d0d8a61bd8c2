/**
 * What the parser accepts must be storable: values RFC 3339 and XML allow but Postgres refuses become rejected
 * records with a reason (quarantined), so they can never fail the transaction of their valid neighbours.
 * tests/integration/policy-worker-poison.test.ts checks the same edges against a real Postgres.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CdrParseError, MAX_ID_BYTES, nulCharacterAt, parseCdrBatch, unstorableTime } from '@cms/cdr';

function batchWith(record: string, session = 's1') {
  return parseCdrBatch(
    `<records session="${session}"><record type="callEnd" time="2024-03-11T10:00:00Z" recordIndex="1" correlatorIndex="0"><call id="c0"/></record>${record}</records>`,
  );
}

function timed(time: string) {
  return batchWith(`<record type="callEnd" time="${time}" recordIndex="2" correlatorIndex="1"><call id="c1"/></record>`);
}

describe('record times Postgres cannot store are rejected, beside their accepted neighbours', () => {
  for (const time of ['2024-03-11T10:00:00+20:00', '2024-03-11T10:00:00-16:00', '2024-03-11T10:00:00+23:59']) {
    test(`offset beyond ±15:59: ${time}`, () => {
      const batch = timed(time);
      assert.deepEqual(
        batch.records.map((r) => r.correlatorIndex),
        [0],
        'the neighbour is accepted',
      );
      assert.equal(batch.rejected.length, 1);
      assert.equal(batch.rejected[0]!.position, 1);
      assert.match(
        batch.rejected[0]!.reason,
        /^callEnd record time ".*" has a UTC offset of [+-]\d\d:\d\d, beyond the ±15:59 that can be stored$/,
      );
    });
  }

  test('a leap second with a fraction', () => {
    assert.match(timed('2016-12-31T23:59:60.5Z').rejected[0]!.reason, /leap second with a fraction/);
  });

  test('more fractional digits than nanoseconds', () => {
    assert.match(timed(`2024-03-11T10:00:00.${'1'.repeat(10)}Z`).rejected[0]!.reason, /10 fractional digits; at most 9/);
  });

  for (const time of [
    '2024-03-11T10:00:00+15:59',
    '2024-03-11T10:00:00-15:59',
    '2016-12-31T23:59:60Z',
    '2016-12-31T23:59:60.000Z',
    '0001-01-01T00:00:00+15:59',
    '9999-12-31T23:59:59-15:59',
    '2024-03-11T10:00:00.123456789Z',
  ]) {
    test(`accepted at the edge of what can be stored: ${time}`, () => {
      const batch = timed(time);
      assert.equal(batch.rejected.length, 0, batch.rejected[0]?.reason);
      assert.equal(batch.records[1]!.time, time);
    });
  }

  test('unstorableTime names nothing for an ordinary CMS time', () => {
    assert.equal(unstorableTime('2024-03-11T10:00:00Z'), null);
    assert.equal(unstorableTime('2024-03-11T10:00:00.123+01:00'), null);
  });
});

describe('ids too long to index are rejected', () => {
  const long = 'x'.repeat(MAX_ID_BYTES + 1);

  test('a call id', () => {
    const batch = batchWith(
      `<record type="callStart" time="2024-03-11T10:00:00Z" recordIndex="2" correlatorIndex="1"><call id="${long}"/></record>`,
    );
    assert.equal(batch.records.length, 1);
    assert.match(batch.rejected[0]!.reason, /^callStart record call id is 1025 bytes long; ids are at most 1024 bytes/);
  });

  test('a callLeg id and a call named by a leg', () => {
    const leg = batchWith(
      `<record type="callLegStart" time="2024-03-11T10:00:00Z" recordIndex="2" correlatorIndex="1"><callLeg id="${long}"/></record>`,
    );
    assert.match(leg.rejected[0]!.reason, /^callLegStart record callLeg id is 1025 bytes long/);
    const call = batchWith(
      `<record type="callLegUpdate" time="2024-03-11T10:00:00Z" recordIndex="2" correlatorIndex="1"><callLeg id="l1"><call>${long}</call></callLeg></record>`,
    );
    assert.match(call.rejected[0]!.reason, /^callLegUpdate record call id is 1025 bytes long/);
  });

  test('bytes count, not characters: 342 three-byte characters are too long, 341 are not', () => {
    const ok = batchWith(
      `<record type="callStart" time="2024-03-11T10:00:00Z" recordIndex="2" correlatorIndex="1"><call id="c"><callCorrelator>${'€'.repeat(341)}</callCorrelator></call></record>`,
    );
    assert.equal(ok.rejected.length, 0);
    const tooLong = batchWith(
      `<record type="callStart" time="2024-03-11T10:00:00Z" recordIndex="2" correlatorIndex="1"><call id="c"><callCorrelator>${'€'.repeat(342)}</callCorrelator></call></record>`,
    );
    assert.match(tooLong.rejected[0]!.reason, /^callStart record callCorrelator is 1026 bytes long/);
  });

  test('a session too long to store refuses the whole batch (it is the key of every record)', () => {
    assert.throws(
      () => batchWith('', long),
      (err: unknown) => err instanceof CdrParseError && /session attribute is 1025 bytes long/.test(err.message),
    );
  });
});

describe('U+0000', () => {
  test('is refused in the body, where XML forbids it, even as a character reference', () => {
    assert.throws(
      () =>
        batchWith('<record type="callEnd" time="2024-03-11T10:00:00Z" recordIndex="2" correlatorIndex="1"><call id="a\u0000b"/></record>'),
      CdrParseError,
    );
    assert.throws(
      () =>
        batchWith('<record type="callEnd" time="2024-03-11T10:00:00Z" recordIndex="2" correlatorIndex="1"><call id="a&#0;b"/></record>'),
      CdrParseError,
    );
  });

  test('is found anywhere in a record value, in names and values, with where it is', () => {
    assert.equal(nulCharacterAt({ '@type': 'callEnd', call: { '@id': 'c1', name: ['a', 'b'] } }), null);
    assert.equal(nulCharacterAt({ call: { '@id': 'c1', name: ['a', 'b\u0000'] } }), 'call.name[1]');
    assert.equal(nulCharacterAt({ call: { 'x\u0000': null } }), 'the name of "call.x\\u0000"');
    assert.equal(nulCharacterAt('\u0000'), 'the record');
  });
});
