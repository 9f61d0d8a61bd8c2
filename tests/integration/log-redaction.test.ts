/**
 * Credentials never reach the logs, wherever a client puts them: as a query parameter under any usual name
 * (refused with 401, yet the request URL is logged) or in a header. Real service processes are run with debug
 * logging, every credential is a unique string, and the captured stdout and stderr are searched for each one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { eventually } from '../helpers/infra.ts';
import { type RunningService, startStack } from '../helpers/stack.ts';

const stack = await startStack({ services: ['records-api', 'cdr-ingest'], env: { LOG_LEVEL: 'debug' } });
const api = stack.services['records-api'] as RunningService;
const ingest = stack.services['cdr-ingest'] as RunningService;

/** Every value sent as a credential, so the search knows what must not appear. */
const sent: { where: string; value: string }[] = [];
function secret(where: string): string {
  const value = `leak${randomBytes(9).toString('hex')}`;
  sent.push({ where, value });
  return value;
}

/** Query parameter names clients use for credentials, in the spellings they arrive in. */
const QUERY_NAMES = [
  'token',
  'access_token',
  'api_key',
  'apikey',
  'api-key',
  'key',
  'password',
  'secret',
  'client_secret',
  'auth',
  'Access_Token',
  'API_KEY',
  'X-Api-Key',
  'authToken',
  'refresh_token',
  '%61ccess_token',
];

/** Headers that carry credentials. */
const HEADER_NAMES = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'x-auth-token', 'api-key'];

function output(service: RunningService): string {
  return service.output.join('');
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

const XML_BAD = '<records session="s"><record type="callStart"';

test('no credential sent to records-api or cdr-ingest, in a query parameter or a header, appears in their logs', async () => {
  let apiRequests = 0;
  const apiGet = async (path: string, headers: Record<string, string> = {}) => {
    apiRequests++;
    const res = await fetch(`${api.url}${path}`, { headers });
    await res.arrayBuffer();
    return res.status;
  };

  // records-api: credentials in the query string, alone (401) and beside a valid bearer token (400: unknown parameter).
  for (const name of QUERY_NAMES) {
    assert.equal(await apiGet(`/api/v1/records?${name}=${secret(`records-api ?${name}=`)}`), 401, name);
    const status = await apiGet(`/api/v1/calls?limit=5&${name}=${secret(`records-api ?${name}= with a bearer token`)}`, {
      authorization: `Bearer ${stack.apiToken}`,
    });
    assert.equal(status, 400, name);
  }
  // The real API token where the issue found it: ?access_token= and ?api_key=, and in a path that does not exist.
  sent.push({ where: 'the API token', value: stack.apiToken });
  assert.equal(await apiGet(`/api/v1/records?access_token=${stack.apiToken}`), 401);
  assert.equal(await apiGet(`/api/v1/records?api_key=${stack.apiToken}&limit=1`), 401);
  assert.equal(await apiGet(`/nowhere?token=${stack.apiToken}`), 404);
  // Credentials in headers, refused and accepted.
  for (const name of HEADER_NAMES) {
    const value = name === 'cookie' ? `session=${secret('cookie header')}` : `Bearer ${secret(`${name} header`)}`;
    assert.equal(await apiGet('/api/v1/records?limit=1', { [name]: value }), 401, name);
  }
  const basic = Buffer.from(`admin:${secret('basic auth password')}`).toString('base64');
  sent.push({ where: 'basic auth header', value: basic });
  assert.equal(await apiGet('/api/v1/records?limit=1', { authorization: `Basic ${basic}` }), 401);
  assert.equal(
    await apiGet('/api/v1/records?limit=1', { authorization: `Bearer ${stack.apiToken}`, cookie: `s=${secret('cookie')}` }),
    200,
  );

  // cdr-ingest: CMS's own ?token= (the right one, with a body it refuses) and every other name (401).
  let ingestRefusals = 0;
  const ingestPost = async (query: string, headers: Record<string, string> = {}, body = XML_BAD) => {
    ingestRefusals++;
    const res = await fetch(`${ingest.url}/cdr/cb1?${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/xml', ...headers },
      body,
    });
    await res.arrayBuffer();
    return res.status;
  };
  sent.push({ where: 'the ingest token', value: stack.ingestToken });
  assert.equal(await ingestPost(`token=${stack.ingestToken}`), 400);
  assert.equal(await ingestPost(`token=${stack.ingestToken}&access_token=${stack.ingestToken}`), 400);
  for (const name of QUERY_NAMES.filter((n) => n !== 'token')) {
    assert.equal(await ingestPost(`${name}=${secret(`cdr-ingest ?${name}=`)}`), 401, name);
  }
  for (const name of HEADER_NAMES) {
    assert.equal(await ingestPost('', { [name]: `Bearer ${secret(`cdr-ingest ${name} header`)}` }), 401, name);
  }

  // Every request has been logged before the logs are searched (records-api logs one "request completed" line per
  // request, cdr-ingest one "CDR POST refused" line per refusal).
  await eventually(() => count(output(api), 'request completed') >= apiRequests, { what: 'records-api request lines' });
  await eventually(() => count(output(ingest), 'CDR POST refused') >= ingestRefusals, { what: 'cdr-ingest refusal lines' });
  for (const service of [api, ingest]) {
    service.process.kill('SIGTERM');
    await service.exited;
  }

  const logs = { 'records-api': output(api), 'cdr-ingest': output(ingest) };
  const leaks = [];
  for (const [service, text] of Object.entries(logs)) {
    for (const { where, value } of sent) {
      if (text.includes(value)) leaks.push(`${service} logged ${where}`);
    }
  }
  assert.deepEqual(leaks, []);
  // The search is only worth something if the requests' URLs were logged at all.
  assert.ok(logs['records-api'].includes('/api/v1/records?access_token=[Redacted]'), 'records-api logs request URLs, redacted');
  assert.ok(logs['cdr-ingest'].includes('/cdr/cb1?access_token=[Redacted]'), 'cdr-ingest logs refused URLs, redacted');
});
