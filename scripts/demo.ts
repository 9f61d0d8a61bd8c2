/**
 * `npm run demo` (beside `npm start`): a two-bridge CMS simulator playing tools/cms-sim/scenarios/demo-console.yaml
 * round after round until Ctrl-C, sending its CDRs to the local cdr-ingest, and the operator console's address
 * with the token to sign in with. Levels 1, 2 and 3 all show, guests wait in the lobby for the operator.
 *
 * Bridges on 7443/7444 (as demo/config.local.yaml expects), control API on 7400. The ingest token and the API token
 * come from INGEST_TOKEN / API_TOKEN, else from .local/dev-secrets.json, which `npm start` writes.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSimulator } from '@cms/cms-sim';
import { createLogger } from '@cms/observability';

const root = fileURLToPath(new URL('..', import.meta.url));
const scenario = join(root, 'tools/cms-sim/scenarios/demo-console.yaml');
const log = createLogger('demo', process.env.LOG_LEVEL === 'debug' ? 'debug' : 'warn', {}, process.stdout);

function secret(name: 'INGEST_TOKEN' | 'API_TOKEN'): string | undefined {
  if (process.env[name]) return process.env[name];
  const file = join(process.env.LOCAL_DIR ?? join(root, '.local'), 'dev-secrets.json');
  if (!existsSync(file)) return undefined;
  return (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>)[name];
}

const ingestToken = secret('INGEST_TOKEN');
if (!ingestToken) {
  process.stderr.write('No ingest token: start the system first (`npm start` writes .local/dev-secrets.json), or set INGEST_TOKEN.\n');
  process.exit(1);
}
const ingestPort = process.env.INGEST_PORT ?? '8444';
const consoleUrl = process.env.CONSOLE_URL ?? `http://127.0.0.1:${process.env.API_PORT ?? '8080'}/`;

const sim = await startSimulator({
  bridges: [
    { name: 'cms-1', port: 7443 },
    { name: 'cms-2', port: 7444 },
  ],
  cdrReceivers: [`http://127.0.0.1:${ingestPort}/cdr/{bridge}?token=${ingestToken}`],
  controlPort: 7400,
  logger: log,
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  process.stdout.write('\nstopping the simulated bridges\n');
  await sim.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

const apiToken = secret('API_TOKEN');
process.stdout.write(
  [
    `Simulated bridges: ${sim.bridges.map((b) => `${b.name} ${b.url}`).join(', ')}; control ${sim.controlUrl}`,
    `Operator console:  ${consoleUrl}`,
    `Sign in with:      ${apiToken ?? '$API_TOKEN'}`,
    'The demo scenario repeats (3 minutes a round) until Ctrl-C.',
    '',
  ].join('\n'),
);
// Open the console where there is a desktop to open it on; over SSH or in a container, the address above is enough.
if (process.env.DEMO_OPEN !== 'false' && (process.env.DISPLAY || process.env.WAYLAND_DISPLAY || process.platform === 'darwin')) {
  execFile(process.platform === 'darwin' ? 'open' : 'xdg-open', [consoleUrl], () => {});
}

for (let round = 1; !stopping; round++) {
  process.stdout.write(`round ${round}: meetings starting\n`);
  const report = await sim.runScenario(scenario);
  if (report.errors.length > 0) log.warn({ errors: report.errors }, 'scenario steps failed');
}
