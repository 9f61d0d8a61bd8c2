/** The console's CSV export fields: RFC 4180 quoting, and no formula a spreadsheet would run. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { csvField } from '../../services/records-api/src/console/records-csv.ts';

test('plain values as they are, nothing for null', () => {
  assert.equal(csvField('callLegStart'), 'callLegStart');
  assert.equal(csvField(42), '42');
  assert.equal(csvField(null), '');
  assert.equal(csvField(undefined), '');
});

test('commas, quotes and line breaks are quoted, quotes doubled', () => {
  assert.equal(csvField('Board, 2nd floor'), '"Board, 2nd floor"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('a\r\nb'), '"a\r\nb"');
});

test('a cell a spreadsheet would take for a formula is prefixed with a quote; negative numbers are left alone', () => {
  assert.equal(csvField('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
  assert.equal(csvField('+1 555'), "'+1 555");
  assert.equal(csvField('@sum'), "'@sum");
  assert.equal(csvField('-5'), '-5');
});

test("a record's own element becomes one JSON cell", () => {
  assert.equal(csvField({ id: 'x', state: 'connected' }), '"{""id"":""x"",""state"":""connected""}"');
});
