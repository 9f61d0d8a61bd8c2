/**
 * `npm start`: one terminal, the whole system. Creates and migrates the database, then runs the four services
 * with prefixed logs; Ctrl-C stops them all (each drains its in-flight work first).
 *
 * Tokens are required by the services. When INGEST_TOKEN / API_TOKEN are not set, tokens are generated once
 * for this checkout, kept in .local/dev-secrets.json (git-ignored) and printed, so a first run just works.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '@cms/config';
import { ensureDatabase, runMigrations } from '@cms/db';
import { createLogger, scrubConnectionUrl } from '@cms/observability';
import concurrently from 'concurrently';

const root = new URL('..', import.meta.url).pathname;
const log = createLogger('start');

function devSecrets(): { INGEST_TOKEN: string; API_TOKEN: string } {
  const dir = join(root, '.local');
  const file = join(dir, 'dev-secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const secrets = { INGEST_TOKEN: randomBytes(24).toString('base64url'), API_TOKEN: randomBytes(24).toString('base64url') };
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return secrets;
}

const env: Record<string, string> = { ...(process.env as Record<string, string>) };
const needsIngest = !env.INGEST_TOKEN && !env.INGEST_TOKEN_FILE;
const needsApi = !env.API_TOKEN && !env.API_TOKEN_FILE;
if (needsIngest || needsApi) {
  const secrets = devSecrets();
  if (needsIngest) env.INGEST_TOKEN = secrets.INGEST_TOKEN;
  if (needsApi) env.API_TOKEN = secrets.API_TOKEN;
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig({ env });
} catch (err) {
  if (err instanceof ConfigError) {
    log.fatal(err.message);
    process.exit(1);
  }
  throw err;
}

try {
  const { created } = await ensureDatabase(config.database.url);
  if (created) log.info({ database: scrubConnectionUrl(config.database.url) }, 'created the database');
  await runMigrations(config.database.url);
} catch (err) {
  log.fatal(
    { database: scrubConnectionUrl(config.database.url), err: (err as Error).message },
    'cannot prepare the database: is PostgreSQL running?',
  );
  process.exit(1);
}

const host = (h: string) => (h === '0.0.0.0' ? '127.0.0.1' : h);
process.stdout.write(
  [
    '',
    `  CDR receiver:  http://${host(config.ingest.host)}:${config.ingest.port}/cdr/<node>?token=${needsIngest ? env.INGEST_TOKEN : '$INGEST_TOKEN'}`,
    `  Records API:   http://${host(config.api.host)}:${config.api.port}/api/v1/records  (Authorization: Bearer ${needsApi ? env.API_TOKEN : '$API_TOKEN'})`,
    `  API docs:      http://${host(config.api.host)}:${config.api.port}/docs`,
    needsIngest || needsApi ? '  (generated tokens are kept in .local/dev-secrets.json)' : '',
    '',
  ].join('\n') + '\n',
);

const service = (name: string) => ({ name, command: `node services/${name}/src/main.ts`, env, cwd: root });
const { result } = concurrently([service('cdr-ingest'), service('policy-worker'), service('cms-actuator'), service('records-api')], {
  prefix: 'name',
  killOthersOn: ['failure'],
  handleInput: false,
});
result.then(
  () => process.exit(0),
  () => process.exit(1),
);
