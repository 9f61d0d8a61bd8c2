import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, isSecretName, scrubText } from '@cms/observability';

test('credential names are recognised in any case and spelling; names that only mention one are not', () => {
  for (const name of [
    'token',
    'access_token',
    'API_KEY',
    'apiKey',
    'api-key',
    'X-Api-Key',
    'key',
    'password',
    'client_secret',
    'auth',
    'authorization',
    'Proxy-Authorization',
    'cookie',
    'Set-Cookie',
    'x-auth-token',
    'sig',
  ]) {
    assert.ok(isSecretName(name), name);
  }
  for (const name of ['tokenName', 'meetingKey', 'session', 'node', 'callId', 'author', 'limit', 'type']) {
    assert.ok(!isSecretName(name), name);
  }
});

test('scrubText redacts query parameters (names decoded), URL passwords and bearer tokens, and keeps the rest', () => {
  assert.equal(
    scrubText('/cdr/cb1?token=s1&node=cb1&%61ccess_token=s2&Api-Key=s3&tokenName=admin'),
    '/cdr/cb1?token=[Redacted]&node=cb1&%61ccess_token=[Redacted]&Api-Key=[Redacted]&tokenName=admin',
  );
  assert.equal(scrubText('connect postgres://app:s4@db:5432/cms failed'), 'connect postgres://app:[Redacted]@db:5432/cms failed');
  assert.equal(scrubText('sent Authorization: Bearer s5abcdefgh'), 'sent Authorization: Bearer [Redacted]');
  assert.equal(scrubText('WWW-Authenticate: Bearer realm="records-api"'), 'WWW-Authenticate: Bearer realm="records-api"');
});

test('every line a logger writes is scrubbed: fields named like credentials at any depth, strings, errors', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const log = createLogger('test', 'info', {}, sink);
  log.info(
    {
      headers: { 'x-api-key': 's6', Cookie: 'a=s7', 'set-cookie': ['b=s12', 'c=s13'] },
      auth: { user: 'u', pass: 's14' },
      nested: [{ client_secret: 's8' }],
      tokenName: 'dashboard',
    },
    'GET /x?apikey=s9',
  );
  log.child({ component: 'c' }).error(new Error('GET https://u:s10@host/path?password=s11 failed'));
  const text = lines.join('');
  for (const secret of ['s6', 's7', 's8', 's9', 's10', 's11', 's12', 's13', 's14'])
    assert.ok(!new RegExp(`\\b${secret}\\b`).test(text), `${secret} in ${text}`);
  assert.match(text, /"tokenName":"dashboard"/);
  assert.equal(lines.length, 2);
  for (const line of lines) JSON.parse(line);
});
