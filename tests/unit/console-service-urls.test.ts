/**
 * console.serviceUrls: where the Health page asks the other services' /readyz. Unset, it is each service's configured
 * port on records-api's own host (npm start, one host); set (docker compose), it is the service's own address.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '@cms/config';
import { parse } from 'yaml';
import { serviceReadyzUrls } from '../../services/records-api/src/console/health.ts';

test('unset: each service is asked at its configured port on this host, a wildcard bind address on the loopback', () => {
  const config = loadConfig({ env: { POLICY_WORKER_HOST: '10.0.0.7', ACTUATOR_PORT: '9202' } });
  assert.deepEqual(config.console.serviceUrls, {});
  assert.deepEqual(serviceReadyzUrls(config), [
    { name: 'cdr-ingest', url: 'http://127.0.0.1:9100/readyz' },
    { name: 'policy-worker', url: 'http://10.0.0.7:9101/readyz' },
    { name: 'cms-actuator', url: 'http://127.0.0.1:9202/readyz' },
  ]);
});

test('CONSOLE_*_URL set each service address, as docker compose does; the others keep the default', () => {
  const config = loadConfig({
    env: { CONSOLE_CDR_INGEST_URL: 'http://cdr-ingest:9100', CONSOLE_POLICY_WORKER_URL: 'http://policy-worker:9101/' },
  });
  assert.deepEqual(config.console.serviceUrls, { cdrIngest: 'http://cdr-ingest:9100', policyWorker: 'http://policy-worker:9101/' });
  assert.deepEqual(serviceReadyzUrls(config), [
    { name: 'cdr-ingest', url: 'http://cdr-ingest:9100/readyz' },
    { name: 'policy-worker', url: 'http://policy-worker:9101/readyz' },
    { name: 'cms-actuator', url: 'http://127.0.0.1:9102/readyz' },
  ]);
});

test('console.serviceUrls in the config file, overridden by the environment', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'console-urls-')), 'config.yaml');
  writeFileSync(file, 'console:\n  serviceUrls:\n    cmsActuator: https://actuator.internal:9102\n    policyWorker: http://pw:9101\n');
  const config = loadConfig({ env: { CONFIG_FILE: file, CONSOLE_POLICY_WORKER_URL: 'http://policy-worker:9101' } });
  assert.equal(config.console.serviceUrls.cmsActuator, 'https://actuator.internal:9102');
  assert.equal(config.console.serviceUrls.policyWorker, 'http://policy-worker:9101');
  assert.equal(serviceReadyzUrls(config)[2]?.url, 'https://actuator.internal:9102/readyz');
});

test('a value that is not an http(s) URL, or a misspelt service, stops start-up naming the key', () => {
  for (const [env, key] of [
    [{ CONSOLE_CMS_ACTUATOR_URL: 'cms-actuator:9102' }, 'console.serviceUrls.cmsActuator'],
    [{ CONSOLE_CDR_INGEST_URL: 'ftp://cdr-ingest:9100' }, 'console.serviceUrls.cdrIngest'],
  ] as const) {
    assert.throws(
      () => loadConfig({ env }),
      (err: unknown) => err instanceof ConfigError && err.key === key,
      JSON.stringify(env),
    );
  }
  assert.throws(
    () => loadConfig({ env: {}, overrides: { console: { serviceUrls: { policyworker: 'http://pw:9101' } } } }),
    (err: unknown) => err instanceof ConfigError && /did you mean "console\.serviceUrls\.policyWorker"/.test(err.message),
  );
});

test('docker compose points records-api at each service by its compose name and health port', () => {
  const compose = parse(readFileSync(fileURLToPath(new URL('../../docker-compose.yml', import.meta.url)), 'utf8')) as {
    services: Record<string, { environment?: Record<string, string> }>;
  };
  const env = compose.services['records-api']?.environment ?? {};
  const config = loadConfig({ env: Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('CONSOLE_'))) });
  // The health ports are the defaults compose leaves in place: ingest.metricsPort, policyWorker.port, actuator.port.
  const defaults = serviceReadyzUrls(loadConfig({ env: {} }));
  for (const [i, { name, url }] of serviceReadyzUrls(config).entries()) {
    const configured = new URL(url);
    assert.equal(configured.hostname, name, `${name} asked at its compose name`);
    assert.ok(compose.services[name], `${name} is a compose service`);
    assert.equal(configured.port, new URL(defaults[i]?.url ?? '').port, `${name} asked at its health port`);
  }
});
