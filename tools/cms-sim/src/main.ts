/**
 * CLI: npm run cms-sim -- [options]. Every option also reads an environment variable (CMS_SIM_*), for the
 * docker compose demo. Prints the bridge URLs and credentials, then logs JSON until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '@cms/observability';
import { parseLoadArgument } from './scenario/parse.ts';
import type { Scenario } from './scenario/types.ts';
import { startSimulator } from './simulator.ts';

const HELP = `cms-sim: simulated Cisco Meeting Server cluster

  --bridges N            number of Call Bridges (cms-1..cms-N)            CMS_SIM_BRIDGES      (1)
  --base-port P          first bridge port; bridge i listens on P+i-1     CMS_SIM_BASE_PORT    (7443; 0 = ephemeral)
  --host H               listen address                                   CMS_SIM_HOST         (127.0.0.1)
  --advertised-host H    host name printed in URLs                        CMS_SIM_ADVERTISED_HOST
  --username U           API user of every bridge                         CMS_SIM_USERNAME     (admin)
  --password P           API password of every bridge                     CMS_SIM_PASSWORD     (admin)
  --receiver URI         CDR receiver, repeatable, {bridge} = bridge name CMS_SIM_RECEIVERS    (comma separated)
  --scenario FILE        run a scenario file (YAML/JSON)                  CMS_SIM_SCENARIO
  --load SPEC            meetings=200,participants=20,window=60,duration=300,bridgesPerMeeting=2
                                                                          CMS_SIM_LOAD
  --seed N               seed for ids and scenario plans                  CMS_SIM_SEED         (random, printed)
  --speed X              simulated seconds per real second                CMS_SIM_SPEED        (1)
  --control-port P       control API port                                 CMS_SIM_CONTROL_PORT (7400)
  --control-token T      require Bearer T on the control API              CMS_SIM_CONTROL_TOKEN
  --page-cap N           most objects per collection GET                  CMS_SIM_PAGE_CAP     (10)
  --max-writes-per-second N  write ceiling per bridge                     CMS_SIM_MAX_WRITES_PER_SECOND
  --fraction-503 F       share of API requests answered 503               CMS_SIM_FRACTION_503 (0)
  --latency-ms N         added API latency                                CMS_SIM_LATENCY_MS   (0)
  --dial-out-answer-ms N simulated ms a dial-out rings before it connects CMS_SIM_DIAL_OUT_ANSWER_MS (1000)
  --tls-key FILE / --tls-cert FILE   serve HTTPS                          CMS_SIM_TLS_KEY / CMS_SIM_TLS_CERT
  --exit-after-scenario  stop when the scenario/load run finishes         CMS_SIM_EXIT_AFTER_SCENARIO
  --log-level L          pino level                                       CMS_SIM_LOG_LEVEL    (info)
  --help
`;

const { values } = parseArgs({
  options: {
    bridges: { type: 'string' },
    'base-port': { type: 'string' },
    host: { type: 'string' },
    'advertised-host': { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    receiver: { type: 'string', multiple: true },
    scenario: { type: 'string' },
    load: { type: 'string' },
    seed: { type: 'string' },
    speed: { type: 'string' },
    'control-port': { type: 'string' },
    'control-token': { type: 'string' },
    'page-cap': { type: 'string' },
    'max-writes-per-second': { type: 'string' },
    'fraction-503': { type: 'string' },
    'latency-ms': { type: 'string' },
    'dial-out-answer-ms': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-cert': { type: 'string' },
    'exit-after-scenario': { type: 'boolean' },
    'log-level': { type: 'string' },
    help: { type: 'boolean' },
  },
});

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const env = process.env;
function option(name: keyof typeof values, envName: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : env[envName] || undefined;
}
function numberOption(name: keyof typeof values, envName: string): number | undefined {
  const raw = option(name, envName);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (Number.isNaN(n)) {
    process.stderr.write(`--${name} / ${envName}: "${raw}" is not a number\n`);
    process.exit(2);
  }
  return n;
}

const log = createLogger('cms-sim', option('log-level', 'CMS_SIM_LOG_LEVEL') ?? 'info');
const bridgeCount = numberOption('bridges', 'CMS_SIM_BRIDGES') ?? 1;
const basePort = numberOption('base-port', 'CMS_SIM_BASE_PORT') ?? 7443;
const receivers = values.receiver ?? (env.CMS_SIM_RECEIVERS ? env.CMS_SIM_RECEIVERS.split(',').map((s) => s.trim()) : []);
const tlsKey = option('tls-key', 'CMS_SIM_TLS_KEY');
const tlsCert = option('tls-cert', 'CMS_SIM_TLS_CERT');
const maxWrites = numberOption('max-writes-per-second', 'CMS_SIM_MAX_WRITES_PER_SECOND');
const speed = numberOption('speed', 'CMS_SIM_SPEED');
const username = option('username', 'CMS_SIM_USERNAME') ?? 'admin';
const password = option('password', 'CMS_SIM_PASSWORD') ?? 'admin';

try {
  const sim = await startSimulator({
    bridges: Array.from({ length: bridgeCount }, (_, i) => ({
      name: `cms-${i + 1}`,
      port: basePort === 0 ? 0 : basePort + i,
      username,
      password,
    })),
    seed: numberOption('seed', 'CMS_SIM_SEED'),
    speed,
    host: option('host', 'CMS_SIM_HOST'),
    advertisedHost: option('advertised-host', 'CMS_SIM_ADVERTISED_HOST'),
    cdrReceivers: receivers,
    pageCap: numberOption('page-cap', 'CMS_SIM_PAGE_CAP'),
    faults: {
      maxWritesPerSecond: maxWrites ?? null,
      fraction503: numberOption('fraction-503', 'CMS_SIM_FRACTION_503'),
      latencyMs: numberOption('latency-ms', 'CMS_SIM_LATENCY_MS'),
    },
    dialOutAnswerMs: numberOption('dial-out-answer-ms', 'CMS_SIM_DIAL_OUT_ANSWER_MS'),
    controlPort: numberOption('control-port', 'CMS_SIM_CONTROL_PORT') ?? 7400,
    controlToken: option('control-token', 'CMS_SIM_CONTROL_TOKEN'),
    tls: tlsKey && tlsCert ? { keyFile: tlsKey, certFile: tlsCert } : undefined,
    logger: log,
  });

  for (const b of sim.bridges) {
    // Credentials are printed on purpose: this is a local test double and the operator needs them to connect.
    process.stdout.write(`${b.name}  ${b.url}  user=${b.username} password=${b.password}  callBridge=${b.callBridgeId}\n`);
  }
  process.stdout.write(`control  ${sim.controlUrl}  seed=${sim.seed}\n`);

  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, 'cms-sim stopping');
    await sim.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  const scenarioFile = option('scenario', 'CMS_SIM_SCENARIO');
  const loadSpec = option('load', 'CMS_SIM_LOAD');
  if (scenarioFile || loadSpec) {
    const runs: Promise<unknown>[] = [];
    if (scenarioFile) runs.push(sim.runScenario(scenarioFile, { speed }).then((report) => log.info({ report }, 'scenario finished')));
    if (loadSpec) {
      const scenario: Scenario = { load: parseLoadArgument(loadSpec) };
      runs.push(sim.runScenario(scenario, { speed }).then((report) => log.info({ report }, 'load run finished')));
    }
    const exitAfter = values['exit-after-scenario'] ?? env.CMS_SIM_EXIT_AFTER_SCENARIO === 'true';
    await Promise.all(runs);
    if (exitAfter) {
      await sim.waitForCdrsDelivered({ timeoutMs: 60_000 }).catch((err: Error) => log.warn({ err }, 'CDRs left undelivered'));
      await shutdown('scenario finished');
    }
  }
} catch (err) {
  log.error({ err }, 'cms-sim failed to start');
  process.exit(1);
}
