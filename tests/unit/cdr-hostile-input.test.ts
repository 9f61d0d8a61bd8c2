import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CdrParseError, parseCdrBatch } from '@cms/cdr';
import { cdrFixture } from '../fixtures/cdr/index.ts';

const MB = 1024 * 1024;
const RECORD_ATTRIBUTES = 'type="callStart" time="2024-03-11T09:00:00Z" recordIndex="1" correlatorIndex="0"';

function parseError(body: string | Buffer, message: RegExp): CdrParseError {
  let caught: unknown;
  try {
    parseCdrBatch(body);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof CdrParseError, `expected a CdrParseError, got ${String(caught)}`);
  assert.equal(caught.name, 'CdrParseError');
  assert.match(caught.message, message);
  return caught;
}

function nested(levels: number): string {
  return `<records session="s1"><record ${RECORD_ATTRIBUTES}><call id="c1">${'<a>'.repeat(levels)}x${'</a>'.repeat(levels)}</call></record></records>`;
}

describe('document type declarations', () => {
  test('billion laughs entity expansion is refused before any expansion', () => {
    const error = parseError(cdrFixture('billion-laughs.xml'), /^XML document type declarations are not accepted/);
    assert.equal(error.line, 2);
  });

  test('an external entity (SYSTEM "file:///etc/passwd") is refused', () => {
    parseError(cdrFixture('external-entity.xml'), /^XML document type declarations are not accepted/);
  });

  test('a DOCTYPE without an internal subset is refused too', () => {
    parseError('<!DOCTYPE records SYSTEM "http://attacker.example/cdr.dtd"><records session="s1"/>', /document type declarations/);
  });

  test('a reference to an undeclared entity is refused, not passed through', () => {
    parseError(
      `<records session="s1"><record ${RECORD_ATTRIBUTES}><call id="c1"><name>&xxe;</name></call></record></records>`,
      /undefined entity &xxe;/,
    );
  });

  test('an undefined entity in an attribute is refused with its line', () => {
    const error = parseError(`<records session="s1">\n<record ${RECORD_ATTRIBUTES} note="&nbsp;"/></records>`, /^undefined entity &nbsp;/);
    assert.equal(error.line, 2);
  });

  test('a bare & is refused, naming its line, whether or not a ; follows later', () => {
    const withoutSemicolon = parseError('<records session="s1">\n<note>R & D</note></records>', /'&' at line 2 does not start an entity/);
    assert.equal(withoutSemicolon.line, 2);
    parseError('<records session="s1">\n<note>R & D;</note></records>', /^body is not well-formed XML: '&' at line 2/);
  });

  test('an XML 1.1 declaration does not let in characters XML 1.0 forbids', () => {
    parseError('<?xml version="1.1"?><records session="s1"><note>&#1;</note></records>', /&#1; is not a character/);
  });

  test('a character reference to a character XML forbids is refused', () => {
    parseError(
      `<records session="s1"><record ${RECORD_ATTRIBUTES}><call id="c1"><name>a&#0;b</name></call></record></records>`,
      /&#0; is not a character/,
    );
  });
});

describe('nesting', () => {
  test('10,000 levels of nesting are refused without exhausting the stack', () => {
    parseError(nested(10_000), /nested more than 32 deep/);
  });

  test('nesting up to 32 levels is accepted', () => {
    // records, record and call are 3 levels.
    const batch = parseCdrBatch(nested(29));
    assert.equal(batch.records.length, 1);
  });

  test('33 levels are refused', () => {
    parseError(nested(30), /nested more than 32 deep/);
  });
});

describe('50 MB bodies finish in bounded time and memory', () => {
  test('50 MB of valid records is refused by the element limit', () => {
    const record = `<record ${RECORD_ATTRIBUTES}><call id="c1"><name>n</name></call></record>`;
    const body = `<records session="s1">${record.repeat(Math.ceil((50 * MB) / record.length))}</records>`;
    parseError(body, /more than 250000 XML elements/);
  });

  test('a 50 MB text value is refused by the value length limit', () => {
    parseError(
      `<records session="s1"><record ${RECORD_ATTRIBUTES}><call id="c1"><name>${'x'.repeat(50 * MB)}</name></call></record></records>`,
      /longer than 65536 characters/,
    );
  });

  test('a 50 MB attribute value with no closing quote is refused by the value length limit', () => {
    parseError(`<records session="s1"><record type="${'<a>'.repeat((50 * MB) / 3)}`, /longer than 65536 characters/);
  });

  test('50 MB of unclosed start tags is refused by the nesting limit', () => {
    parseError(`<records session="s1">${'<a>'.repeat((50 * MB) / 3)}`, /nested more than 32 deep/);
  });

  test('50 MB of values each within the limits is parsed', () => {
    const record = `<record ${RECORD_ATTRIBUTES}><call id="c1"><name>${'x'.repeat(60_000)}</name></call></record>`;
    const count = Math.ceil((50 * MB) / record.length);
    const batch = parseCdrBatch(`<records session="s1">${record.repeat(count)}</records>`);
    assert.equal(batch.records.length, count);
    assert.equal(((batch.records[0]!.raw['call'] as Record<string, unknown>)['name'] as string).length, 60_000);
  });

  test('the element and value length limits are options', () => {
    const record = `<record ${RECORD_ATTRIBUTES}><call id="c1"><name>board</name></call></record>`;
    const body = `<records session="s1">${record}${record}</records>`;
    assert.throws(() => parseCdrBatch(body, { maxElements: 6 }), { name: 'CdrParseError', message: /more than 6 XML elements/ });
    assert.equal(parseCdrBatch(body, { maxElements: 7 }).records.length, 2);
    assert.throws(() => parseCdrBatch(body, { maxValueLength: 4 }), { name: 'CdrParseError', message: /longer than 4 characters/ });
  });
});

describe('bodies that are not a <records> document', () => {
  test('an empty body is refused', () => {
    parseError('', /^body is empty/);
    parseError(Buffer.alloc(0), /^body is empty/);
    parseError(' \r\n\t', /^body is empty/);
  });

  test('a gzip-compressed body is refused as binary', () => {
    parseError(gzipSync(cdrFixture('cisco-flow-1.xml')), /^body is not XML text: character U\+001F/);
  });

  test('binary junk that decodes to printable characters is refused as not well-formed', () => {
    const junk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < junk.length; i++) junk[i] = 0x80 + ((i * 131) % 128);
    parseError(junk, /^body is not well-formed XML/);
  });

  test('a NUL character is refused with its line', () => {
    const error = parseError('<records session="s1">\n<record>\u0000</record></records>', /U\+0000 at line 2/);
    assert.equal(error.line, 2);
  });

  test('an unpaired surrogate is refused', () => {
    parseError('<records session="s1"><x>\ud800</x></records>', /unpaired surrogate/);
  });

  test('a JSON body is refused as not well-formed XML', () => {
    parseError('{"records": []}', /^body is not well-formed XML/);
  });

  test('an unclosed element is refused with the line it is on', () => {
    const error = parseError(
      '<records session="s1">\n  <record type="callStart">\n</records>',
      /^body is not well-formed XML: .* at line 3/,
    );
    assert.equal(error.line, 3);
  });

  test('text after the root element is refused', () => {
    parseError('<records session="s1"/>\ntrailing', /^body is not well-formed XML: text outside the root element at line 2/);
  });

  test('a mismatched end tag is refused, naming both tags', () => {
    parseError(
      '<records session="s1"><note></notes></records>',
      /^body is not well-formed XML: <note> is not closed before <\/notes> at line 1/,
    );
  });

  test('a body that is refused halfway through does not affect the next one', () => {
    parseError(`<records session="s1"><record ${RECORD_ATTRIBUTES}><call id="c1"><name>half`, /is not closed at the end of the body/);
    parseError(`<records session="s1"><record ${RECORD_ATTRIBUTES}><call id="c1"><name>&bad;</name>`, /undefined entity &bad;/);
    const batch = parseCdrBatch(`<records session="s2"><record ${RECORD_ATTRIBUTES}><call id="c2"/></record></records>`);
    assert.equal(batch.session, 's2');
    assert.deepEqual(
      batch.records.map((record) => record.raw),
      [{ '@type': 'callStart', '@time': '2024-03-11T09:00:00Z', '@recordIndex': '1', '@correlatorIndex': '0', call: { '@id': 'c2' } }],
    );
  });

  test('a root other than <records> is refused, naming it', () => {
    parseError('<html><body/></html>', /^root element is <html>, expected <records>$/);
  });

  test('two root elements are refused', () => {
    parseError('<records session="s1"/><records session="s2"/>', /^body has more than one top-level element/);
  });

  test('a <records> without session is refused', () => {
    parseError('<records callBridge="158ba4f7-70eb-4a35-982c-71d4f1674277"></records>', /^<records> has no session attribute$/);
    parseError('<records session=""/>', /^<records> has no session attribute$/);
  });

  test('an element named __proto__ is refused and does not touch Object.prototype', () => {
    parseError(
      `<records session="s1"><record ${RECORD_ATTRIBUTES}><__proto__><polluted>yes</polluted></__proto__></record></records>`,
      /could not be parsed/,
    );
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });
});
