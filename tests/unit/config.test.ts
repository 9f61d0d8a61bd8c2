import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '@cms/config';
import { editDistance, nearestKey } from '../../libs/config/src/suggest.ts';

const dir = mkdtempSync(join(tmpdir(), 'cms-config-'));
function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function configErrorAt(fn: () => unknown, key: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    assert.equal(err.key, key);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('loadConfig', () => {
  test('gives the documented defaults with no file and no environment', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.ingest.port, 8444);
    assert.equal(config.api.port, 8080);
    assert.equal(config.policyWorker.port, 9101);
    assert.equal(config.actuator.port, 9102);
    assert.equal(config.redis.url, 'redis://127.0.0.1:6379');
    assert.equal(config.database.url, 'postgres://postgres@127.0.0.1:5432/cms_cdr');
    assert.equal(config.ingest.bodyLimitBytes, 5 * 1024 * 1024);
    assert.deepEqual(config.policy.messages[2], { text: 'Security Level 2', position: 'bottom', duration: 'permanent' });
    assert.equal(config.ingest.token, undefined);
  });

  test('reads the YAML file named by CONFIG_FILE, and the environment overrides it', () => {
    const path = file(
      'config.yaml',
      'ingest:\n  port: 9000\n  maxBacklog: 10\npolicy:\n  secureDomains: [corp.example]\ncms:\n  nodes:\n    - { name: cms1, url: "https://cms1.example:445", username: api, password: p }\n',
    );
    const config = loadConfig({ env: { CONFIG_FILE: path, INGEST_PORT: '9100', POLICY_INTERNAL_DOMAINS: 'a.example, b.example' } });
    assert.equal(config.ingest.port, 9100);
    assert.equal(config.ingest.maxBacklog, 10);
    assert.deepEqual(config.policy.secureDomains, ['corp.example']);
    assert.deepEqual(config.policy.internalDomains, ['a.example', 'b.example']);
    assert.equal(config.cms.nodes[0]?.maxWritesPerSecond, 10);
  });

  test('reads secrets from <NAME>_FILE (trailing newline dropped), which wins over the plain variable', () => {
    const token = file('ingest-token', 'from-the-secret-file-0123\n');
    const config = loadConfig({ env: { INGEST_TOKEN: 'from-the-environment-0123', INGEST_TOKEN_FILE: token } });
    assert.equal(config.ingest.token, 'from-the-secret-file-0123');
  });

  test('resolves passwordFile and tokenFile in the YAML', () => {
    const password = file('cms1-password', 's3cret\n');
    const apiToken = file('grafana-token', 'grafana-token-0123456789\n');
    const path = file(
      'secrets.yaml',
      `cms:\n  nodes:\n    - { name: cms1, url: "https://cms1.example:445", username: api, passwordFile: ${password} }\napi:\n  tokens:\n    - { name: grafana, tokenFile: ${apiToken}, role: viewer }\n`,
    );
    const config = loadConfig({ env: { CONFIG_FILE: path } });
    assert.equal(config.cms.nodes[0]?.password, 's3cret');
    assert.equal(config.api.tokens[0]?.token, 'grafana-token-0123456789');
  });

  test('names the key of an invalid environment value', () => {
    configErrorAt(() => loadConfig({ env: { INGEST_PORT: 'eighty' } }), 'INGEST_PORT', /whole number/);
  });

  test('names the key of an invalid file value, with its position in a list', () => {
    const path = file('bad-node.yaml', 'cms:\n  nodes:\n    - { name: cms1, url: "ftp://cms1.example", username: api, password: p }\n');
    configErrorAt(() => loadConfig({ env: { CONFIG_FILE: path } }), 'cms.nodes[0].url');
  });

  test('rejects a short token, naming it', () => {
    configErrorAt(() => loadConfig({ env: { API_TOKEN: 'short' } }), 'api.token', /16 characters/);
  });

  test('explains an unreadable file, invalid YAML and an unreadable secret file', () => {
    configErrorAt(() => loadConfig({ env: { CONFIG_FILE: join(dir, 'missing.yaml') } }), 'CONFIG_FILE', /cannot read/);
    configErrorAt(() => loadConfig({ env: { CONFIG_FILE: file('broken.yaml', 'ingest: [port: 1\n') } }), 'CONFIG_FILE', /not valid YAML/);
    configErrorAt(
      () => loadConfig({ env: { INGEST_TOKEN_FILE: join(dir, 'missing-secret') } }),
      'INGEST_TOKEN_FILE',
      /cannot read secret file/,
    );
  });
});

describe('unknown configuration keys', () => {
  const load = (name: string, yaml: string) => () => loadConfig({ env: { CONFIG_FILE: file(name, yaml) } });

  test('a misspelt key stops start-up, naming it and the nearest known key', () => {
    configErrorAt(
      load('typo.yaml', 'policy:\n  secureDomain: [corp.example]\n'),
      'policy.secureDomain',
      /unknown key; did you mean "policy\.secureDomains"\?/,
    );
  });

  test('an unknown top-level key with no near match lists the keys allowed there', () => {
    configErrorAt(load('bogus.yaml', 'bogus: 1\n'), 'bogus', /unknown key; the keys allowed at the top level are log, redis, .*policy$/);
  });

  test('unknown keys inside list entries name the entry: cms.nodes[] and api.tokens[]', () => {
    configErrorAt(
      load('node-typo.yaml', 'cms:\n  nodes:\n    - { name: cms1, url: "https://cms1.example:445", username: api, passwrd: p }\n'),
      'cms.nodes[0].passwrd',
      /did you mean "cms\.nodes\[0\]\.password"\?/,
    );
    configErrorAt(
      load('token-typo.yaml', 'api:\n  tokens:\n    - { name: grafana, tokenfile: /run/secrets/t, role: viewer }\n'),
      'api.tokens[0].tokenfile',
      /did you mean "api\.tokens\[0\]\.tokenFile"\?/,
    );
  });

  test('every nesting level is checked, and every unknown key is listed', () => {
    configErrorAt(
      load('messages.yaml', 'policy:\n  messages:\n    2: { text: Internal, postion: top }\n'),
      'policy.messages.2.postion',
      /did you mean "policy\.messages\.2\.position"\?/,
    );
    configErrorAt(
      load('levels.yaml', 'policy:\n  messages:\n    4: { text: Four }\n'),
      'policy.messages.4',
      /the keys allowed in "policy\.messages" are 1, 2, 3$/,
    );
    configErrorAt(
      load('two.yaml', 'ingest:\n  prot: 1\n  hots: x\n'),
      'ingest.prot',
      /did you mean "ingest\.port"\? \(also unknown: ingest\.hots\)/,
    );
  });

  test('explicit overrides are checked as strictly as the file', () => {
    configErrorAt(
      () => loadConfig({ env: {}, overrides: { actuator: { reconcileIntervalSecond: 0 } } }),
      'actuator.reconcileIntervalSecond',
    );
  });

  test('the shipped example and demo configurations load', () => {
    const root = join(import.meta.dirname, '../..');
    for (const name of ['config.example.yaml', 'demo/config.local.yaml', 'demo/config.compose.yaml']) {
      assert.doesNotThrow(() => loadConfig({ env: { CONFIG_FILE: join(root, name) } }), name);
    }
  });

  test('the edit distance counts a missing letter, a swap and a case change as one edit at most', () => {
    assert.equal(editDistance('secureDomain', 'secureDomains'), 1);
    assert.equal(editDistance('prot', 'port'), 1);
    assert.equal(editDistance('securedomains', 'secureDomains'), 0);
    assert.equal(editDistance('bogus', 'log'), 3);
    assert.equal(nearestKey('bogus', ['log', 'redis', 'policy']), undefined);
    assert.equal(nearestKey('internalDomian', ['secureDomains', 'internalDomains']), 'internalDomains');
  });
});
