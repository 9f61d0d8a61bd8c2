import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCdrBatch, type XmlObject } from '@cms/cdr';
import { cdrFixture, jsonFixture } from '../fixtures/cdr/index.ts';

/** The raw value of the only record in a batch around `content`. */
function rawOf(content: string): XmlObject {
  const batch = parseCdrBatch(
    `<records session="s1"><record type="callLegEnd" time="2024-03-11T10:00:00Z" recordIndex="1" correlatorIndex="0">${content}</record></records>`,
  );
  assert.deepEqual(batch.rejected, []);
  return batch.records[0]!.raw;
}

describe('raw is what xmltodict.parse gives for the <record> element', () => {
  test('the callLegEnd quality sample matches the hand-written xmltodict output, key order included', () => {
    const raw = parseCdrBatch(cdrFixture('call-leg-end-quality.xml')).records[0]!.raw;
    const expected = jsonFixture('call-leg-end-quality.xmltodict.json');
    assert.deepEqual(raw, expected);
    assert.equal(JSON.stringify(raw), JSON.stringify(expected));
  });

  test('attributes come first as "@name", then children in document order', () => {
    const raw = rawOf('<callLeg id="l1"><b>2</b><a>1</a></callLeg>');
    assert.deepEqual(Object.keys(raw), ['@type', '@time', '@recordIndex', '@correlatorIndex', 'callLeg']);
    assert.deepEqual(Object.keys(raw['callLeg'] as XmlObject), ['@id', 'b', 'a']);
  });

  test('an element with attributes and text has "@attr" and "#text"', () => {
    assert.deepEqual((rawOf('<callLeg id="l1"><codec profile="high">h264</codec></callLeg>')['callLeg'] as XmlObject)['codec'], {
      '@profile': 'high',
      '#text': 'h264',
    });
  });

  test('an empty element without attributes is null, whether written <x/> or <x></x>', () => {
    const leg = rawOf('<callLeg id="l1"><ivr/><ownerName></ownerName><blank>   </blank></callLeg>')['callLeg'] as XmlObject;
    assert.deepEqual(leg, { '@id': 'l1', ivr: null, ownerName: null, blank: null });
  });

  test('an empty element with attributes is an object of its attributes', () => {
    const leg = rawOf('<callLeg id="l1"><alarm type="packetLoss" durationPercentage="1.4"/></callLeg>')['callLeg'] as XmlObject;
    assert.deepEqual(leg['alarm'], { '@type': 'packetLoss', '@durationPercentage': '1.4' });
  });

  test('repeated elements become an array at their first position; a single one is not wrapped', () => {
    const leg = rawOf(
      '<callLeg id="l1"><alarm type="packetLoss" durationPercentage="0.1"/><reason>timeout</reason>' +
        '<alarm type="excessiveJitter" durationPercentage="0.0"/><alarm/></callLeg>',
    )['callLeg'] as XmlObject;
    assert.deepEqual(Object.keys(leg), ['@id', 'alarm', 'reason']);
    assert.deepEqual(leg['alarm'], [
      { '@type': 'packetLoss', '@durationPercentage': '0.1' },
      { '@type': 'excessiveJitter', '@durationPercentage': '0.0' },
      null,
    ]);
    assert.equal(leg['reason'], 'timeout');
  });

  test('numbers, booleans and leading zeros stay strings exactly as sent', () => {
    const leg = rawOf(
      '<callLeg id="007"><durationSeconds>0042</durationSeconds><remoteTeardown>true</remoteTeardown><x>1e3</x><y>0x10</y></callLeg>',
    )['callLeg'] as XmlObject;
    assert.deepEqual(leg, { '@id': '007', durationSeconds: '0042', remoteTeardown: 'true', x: '1e3', y: '0x10' });
  });

  test('mixed content: all text and CDATA of an element are joined, then stripped, beside its children', () => {
    const leg = rawOf('<callLeg id="l1"><note> a <![CDATA[ b ]]> c <x/> d </note><m k="1">t<y/>u<!-- c -->v</m></callLeg>')[
      'callLeg'
    ] as XmlObject;
    assert.deepEqual(leg['note'], { x: null, '#text': 'a  b  c  d' });
    assert.deepEqual(leg['m'], { '@k': '1', y: null, '#text': 'tuv' });
    assert.deepEqual(Object.keys(leg['m'] as XmlObject), ['@k', 'y', '#text']);
  });

  test('attribute values are entity-decoded and their line breaks and tabs become spaces, as XML parsers do', () => {
    const leg = rawOf('<callLeg id="l&amp;1 &lt;&#x41;&#66;&quot;&apos;&gt;" name=" a\tb\r\nc "/>')['callLeg'] as XmlObject;
    assert.deepEqual(leg, { '@id': 'l&1 <AB"\'>', '@name': ' a b c ' });
  });

  test('elements named like Object.prototype members are ordinary keys', () => {
    const leg = rawOf('<callLeg id="l1"><constructor>1</constructor><toString>2</toString><toString>3</toString></callLeg>')[
      'callLeg'
    ] as XmlObject;
    assert.deepEqual(Object.entries(leg), [
      ['@id', 'l1'],
      ['constructor', '1'],
      ['toString', ['2', '3']],
    ]);
  });

  test('text is trimmed of surrounding whitespace but inner whitespace is kept', () => {
    const leg = rawOf('<callLeg id="l1"><displayName>\n    Ann   Andersson \n  </displayName></callLeg>')['callLeg'] as XmlObject;
    assert.equal(leg['displayName'], 'Ann   Andersson');
  });
});
