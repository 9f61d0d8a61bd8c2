/**
 * Hostile parameters: every route and every parameter of the records API gets a generated matrix of values a
 * careless or hostile client sends (NUL bytes, numbers JavaScript reads but Postgres does not store, years and
 * offsets out of Postgres's range, invalid UTF-8, overlong text, repeated parameters, forged cursors). None may
 * answer 5xx; every value the parameter cannot take answers 400 problem+json naming the parameter; values it can
 * take (any text for a free-text filter) answer as usual.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RECORD_TYPES } from '@cms/cdr';
import { testDatabase } from '../helpers/infra.ts';
import { bearer, recordsApiConfig, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

const { url, db } = await testDatabase();
const app = await startRecordsApi(db, { config: recordsApiConfig(url) });

/** What a parameter takes: only `text` takes most of the values below (free text, 1 to 256 characters, no NUL). */
type Kind = 'integer' | 'enum' | 'boolean' | 'guid' | 'type' | 'timestamp' | 'cursor' | 'text';

interface Parameter {
  route: string;
  name: string;
  kind: Kind;
  in: 'query' | 'path';
}

const query = (route: string, params: Record<string, Kind>): Parameter[] =>
  Object.entries(params).map(([name, kind]) => ({ route, name, kind, in: 'query' }));

const PARAMETERS: Parameter[] = [
  ...query('/api/v1/records', {
    limit: 'integer',
    order: 'enum',
    cursor: 'cursor',
    type: 'type',
    callId: 'guid',
    callLegId: 'guid',
    callCorrelator: 'text',
    session: 'text',
    node: 'text',
    from: 'timestamp',
    to: 'timestamp',
  }),
  { route: '/api/v1/records/:page', name: 'page', kind: 'integer', in: 'path' },
  ...query('/api/v1/calls', {
    limit: 'integer',
    cursor: 'cursor',
    active: 'boolean',
    callCorrelator: 'text',
    node: 'text',
    coSpace: 'text',
    level: 'enum',
  }),
  { route: '/api/v1/calls/:id', name: 'id', kind: 'text', in: 'path' },
  ...query('/api/v1/meetings', { limit: 'integer', cursor: 'cursor', level: 'enum', active: 'boolean' }),
  { route: '/api/v1/meetings/:meetingKey', name: 'meetingKey', kind: 'text', in: 'path' },
];

const cursor = (json: string) => Buffer.from(json, 'utf8').toString('base64url');

interface Value {
  name: string;
  /** As it goes on the wire (percent-encoded where it must be). */
  raw: string;
  /** Free text can hold it. */
  text: boolean;
}

const VALUES: Value[] = [
  { name: 'NUL', raw: '%00', text: false },
  { name: 'NUL inside', raw: 'ab%00cd', text: false },
  { name: 'NUL after a valid value', raw: `${encodeURIComponent('46d49cb4-8171-4abc-97f5-b88035b1da0a')}%00`, text: false },
  { name: 'a huge number', raw: '99999999999999999999999999', text: true },
  { name: 'Infinity', raw: 'Infinity', text: true },
  { name: '-Infinity', raw: '-Infinity', text: true },
  { name: 'NaN', raw: 'NaN', text: true },
  { name: '1e400', raw: '1e400', text: true },
  { name: 'a negative number', raw: '-1', text: true },
  { name: 'zero', raw: '0', text: true },
  { name: 'a fraction', raw: '1.5', text: true },
  { name: 'hexadecimal', raw: '0x10', text: true },
  { name: 'an exponent', raw: '1e2', text: true },
  { name: 'a number with spaces', raw: '%201%20', text: true },
  { name: 'nothing', raw: '', text: false },
  { name: 'year 0000', raw: '0000-01-01T00:00:00Z', text: true },
  { name: 'year 10000', raw: '10000-01-01T00:00:00Z', text: true },
  { name: 'year -infinity', raw: '-infinity', text: true },
  { name: 'year infinity', raw: 'infinity', text: true },
  { name: 'offset +20:00', raw: encodeURIComponent('2024-03-01T08:00:00+20:00'), text: true },
  { name: 'offset -16:00', raw: '2024-03-01T08:00:00-16:00', text: true },
  { name: 'February 30', raw: '2024-02-30T08:00:00Z', text: true },
  { name: 'a time without a zone', raw: '2024-03-01T08:00:00', text: true },
  { name: 'invalid UTF-8 %FF', raw: '%FF', text: false },
  { name: 'invalid UTF-8 %C3%28', raw: 'a%C3%28', text: false },
  { name: 'a UTF-16 surrogate in UTF-8', raw: '%ED%A0%80', text: false },
  { name: 'a very long string', raw: 'x'.repeat(5000), text: false },
  { name: 'SQL', raw: encodeURIComponent("' OR 1=1; DROP TABLE cdr_records; --"), text: true },
  { name: 'a cursor that is not base64url', raw: encodeURIComponent('!!!'), text: true },
  { name: 'a cursor of {}', raw: cursor('{}'), text: true },
  { name: 'a records cursor with id 1e400', raw: cursor('{"v":1,"k":"records","o":"asc","id":1e400}'), text: true },
  { name: 'a records cursor with a negative id', raw: cursor('{"v":1,"k":"records","o":"asc","id":-5}'), text: true },
  { name: 'a calls cursor with a NUL id', raw: cursor('{"v":1,"k":"calls","s":null,"id":"a\\u0000b"}'), text: true },
  {
    name: 'a calls cursor with offset +20:00',
    raw: cursor('{"v":1,"k":"calls","s":"2024-03-01T08:00:00+20:00","id":"x"}'),
    text: true,
  },
  { name: 'a meetings cursor in year 0000', raw: cursor('{"v":1,"k":"meetings","u":"0000-01-01T00:00:00Z","m":"x"}'), text: true },
  { name: 'a meetings cursor with a NUL key', raw: cursor('{"v":1,"k":"meetings","u":"2024-03-01T08:00:00Z","m":"\\u0000"}'), text: true },
  { name: 'a meetings cursor with an object key', raw: cursor('{"v":1,"k":"meetings","u":"2024-03-01T08:00:00Z","m":{}}'), text: true },
];

function request(parameter: Parameter, raw: string, repeat = false): string {
  if (parameter.in === 'path') return parameter.route.replace(`:${parameter.name}`, raw);
  const pair = `${parameter.name}=${raw}`;
  return `${parameter.route}?${repeat ? `${pair}&${pair}` : pair}`;
}

async function get(path: string) {
  return app.inject({ method: 'GET', url: path, headers: bearer(TOKENS.viewer) });
}

function where(parameter: Parameter): string {
  return `${parameter.in === 'path' ? 'params' : 'querystring'}/${parameter.name}`;
}

describe('hostile parameters on every route', () => {
  for (const parameter of PARAMETERS) {
    test(`${parameter.route} ${parameter.name}: no 5xx, and 400 naming it for every value it cannot take`, async () => {
      const failures: string[] = [];
      const cases = VALUES.map((value) => ({ ...value, repeat: false }));
      if (parameter.in === 'query') cases.push({ name: 'given twice', raw: 'abc', text: false, repeat: true });
      for (const value of cases) {
        const path = request(parameter, value.raw, value.repeat);
        const res = await get(path);
        const label = `${value.name} (${path.length > 120 ? `${path.slice(0, 120)}...` : path})`;
        if (res.statusCode >= 500) {
          failures.push(`${label}: ${res.statusCode} ${res.body}`);
          continue;
        }
        const acceptable = parameter.kind === 'text' && value.text;
        if (acceptable) {
          // Free text the filter can hold: an ordinary answer (a page, or 404 for an id nobody recorded).
          if (res.statusCode !== 200 && res.statusCode !== 404) failures.push(`${label}: ${res.statusCode} ${res.body}`);
          continue;
        }
        // An empty path segment may not reach the route at all; a 404 there is an answer too.
        if (parameter.in === 'path' && value.raw === '' && res.statusCode === 404) continue;
        const problem = res.statusCode === 400 ? res.json<{ status?: number; detail?: string }>() : {};
        if (
          res.statusCode !== 400 ||
          !String(res.headers['content-type']).startsWith('application/problem+json') ||
          problem.status !== 400 ||
          !problem.detail?.includes(where(parameter))
        ) {
          failures.push(`${label}: expected 400 problem+json naming ${where(parameter)}, got ${res.statusCode} ${res.body.slice(0, 300)}`);
        }
      }
      assert.deepEqual(failures, []);
    });
  }
});

describe('filters that could never match, and enums', () => {
  async function problemOf(path: string): Promise<string> {
    const res = await get(path);
    assert.equal(res.statusCode, 400, `${path}: ${res.body}`);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    return res.json<{ detail: string }>().detail;
  }

  test('type=bogus answers 400 listing the record types', async () => {
    const detail = await problemOf('/api/v1/records?type=bogus');
    assert.match(detail, /querystring\/type must be one of: /);
    for (const type of RECORD_TYPES) assert.ok(detail.includes(type), `${type} in ${detail}`);
  });

  test('a known record type answers 200 even when none is stored', async () => {
    const res = await get('/api/v1/records?type=streamingEnd');
    assert.equal(res.statusCode, 200);
  });

  test('callId and callLegId that are not GUIDs answer 400 saying a GUID is expected', async () => {
    for (const name of ['callId', 'callLegId']) {
      const detail = await problemOf(`/api/v1/records?${name}=not-a-guid`);
      assert.match(detail, new RegExp(`querystring/${name} must be a GUID`));
    }
    const res = await get('/api/v1/records?callId=46D49CB4-8171-4ABC-97F5-B88035B1DA0A&callLegId=fc9c85ca-8c41-4a1a-9252-b16977d1e4e1');
    assert.equal(res.statusCode, 200);
  });

  test('enum errors list the allowed values', async () => {
    assert.match(await problemOf('/api/v1/records?order=sideways'), /querystring\/order must be one of: asc, desc/);
    assert.match(await problemOf('/api/v1/calls?level=7'), /querystring\/level must be one of: 1, 2, 3/);
    assert.match(await problemOf('/api/v1/meetings?level=0'), /querystring\/level must be one of: 1, 2, 3/);
  });

  test('timestamps Postgres can store answer 200: early years, fractions, the largest offsets, lower-case t and z', async () => {
    for (const value of [
      '0001-01-01T00:00:00Z',
      '0050-06-15T12:00:00Z',
      '9999-12-31T23:59:59.999999Z',
      '2024-03-01T08:00:00+15:59',
      '2024-03-01t08:00:00z',
    ]) {
      const res = await get(`/api/v1/records?from=${encodeURIComponent(value)}&to=${encodeURIComponent(value)}`);
      assert.equal(res.statusCode, 200, `${value}: ${res.body}`);
    }
  });
});
