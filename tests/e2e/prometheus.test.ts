/**
 * The monitoring in ops/ against the real system, without Docker: Debian's promtool checks the repo's Prometheus
 * config and alert rules (and runs their unit tests), then Debian's prometheus scrapes the four services running on
 * loopback (the repo's scrape config with its compose targets pointed at them) while the CMS simulator holds a
 * meeting. Every metric a dashboard panel or an alert rule names must be in that scrape, every panel's query must
 * return data, and Prometheus must evaluate every alert rule without error.
 *
 * Needs the `prometheus` package (apt-get install prometheus; .ci/run installs it when missing).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Simulator } from '@cms/cms-sim';
import { configSchema } from '@cms/config';
import { parse, stringify } from 'yaml';
import { recordsXml, simpleCallRecords } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd } from '../helpers/infra.ts';
import { freePort, type ServiceName, type Stack, startStack } from '../helpers/stack.ts';
import { bridgesWithCredentials, cmsNodesOf, sendCdrsToStack, startStackSimulator, writeConfigFile } from '../helpers/stack-setup.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROMETHEUS_DIR = path.join(ROOT, 'ops/prometheus');
const DASHBOARDS_DIR = path.join(ROOT, 'ops/grafana/dashboards');
const SERVICES: ServiceName[] = ['cdr-ingest', 'policy-worker', 'cms-actuator', 'records-api'];
const SECURE = 'secure.example';
const INTERNAL = 'corp.example';

/** What Grafana puts in for its variables when the dashboard shows every node. */
const GRAFANA_VARIABLES: Record<string, string> = { __rate_interval: '1m', node: '.*' };

interface Query {
  where: string;
  expr: string;
}

function dashboardQueries(): Query[] {
  const queries: Query[] = [];
  for (const file of readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json'))) {
    const dashboard = JSON.parse(readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8')) as {
      panels: { type: string; title: string; targets?: { expr: string }[]; panels?: unknown[] }[];
    };
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) queries.push({ where: `${file} "${panel.title}"`, expr: target.expr });
    }
  }
  return queries;
}

function alertQueries(): Query[] {
  const rules = parse(readFileSync(path.join(PROMETHEUS_DIR, 'alerts.yml'), 'utf8')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  return rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })));
}

function withGrafanaVariables(expr: string): string {
  return expr.replace(/\$\{?(\w+)\}?/g, (whole, name: string) => GRAFANA_VARIABLES[name] ?? whole);
}

const PROMQL_WORDS = new Set([
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers left once strings, label matchers, ranges and grouping
 * clauses are taken out, except functions and aggregations (followed by "(") and the language's keywords.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of bare.matchAll(/(?<![\w.:])[a-zA-Z_:][\w:]*/g)) {
    const isCall = /^\s*\(/.test(bare.slice(match.index + match[0].length));
    if (!isCall && !PROMQL_WORDS.has(match[0].toLowerCase())) names.add(match[0]);
  }
  return [...names];
}

async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: PROMETHEUS_DIR });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    assert.fail(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

let prometheusUrl: string;

async function api<T>(pathAndQuery: string): Promise<T> {
  const res = await fetch(`${prometheusUrl}${pathAndQuery}`);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  assert.equal(body.status, 'success', `${pathAndQuery}: ${body.error}`);
  return body.data;
}

async function query(expr: string): Promise<PromResult[]> {
  const data = await api<{ resultType: string; result: PromResult[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
  assert.equal(data.resultType, 'vector', expr);
  return data.result;
}

const finite = (rows: PromResult[]) => rows.filter((r) => Number.isFinite(Number(r.value[1])));

describe('the repo monitoring config', () => {
  test('promtool accepts the Prometheus config and the alert rules, and the rules pass their unit tests', async () => {
    assert.match(await promtool('check', 'config', 'prometheus.yml'), /SUCCESS/);
    assert.match(await promtool('check', 'rules', 'alerts.yml'), /SUCCESS/);
    assert.match(await promtool('test', 'rules', 'alerts.test.yml'), /SUCCESS/);
  });

  test('the scrape config has one job per service, every replica found by its compose name, at the port each serves /metrics on by default', () => {
    const config = parse(readFileSync(path.join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; static_configs?: unknown; dns_sd_configs: { names: string[]; type: string; port: number }[] }[];
    };
    const defaults = configSchema.parse({});
    const expected: Record<string, string> = {
      // Their main ports are published and answer /metrics with 404: Prometheus scrapes the metrics ports.
      'cdr-ingest': `cdr-ingest:${defaults.ingest.metricsPort}`,
      'policy-worker': `policy-worker:${defaults.policyWorker.port}`,
      'cms-actuator': `cms-actuator:${defaults.actuator.port}`,
      'records-api': `records-api:${defaults.api.metricsPort}`,
    };
    // Docker's DNS answers a service's name with one A record per replica: each is a target.
    const actual = Object.fromEntries(
      config.scrape_configs.map((job) => [
        job.job_name,
        job.dns_sd_configs.flatMap((d) => d.names.map((name) => `${name}:${d.type === 'A' ? d.port : `type ${d.type}`}`)).join(','),
      ]),
    );
    assert.deepEqual(actual, expected);
    assert.deepEqual(
      config.scrape_configs.filter((job) => job.static_configs !== undefined).map((job) => job.job_name),
      [],
      'no static targets (they would reach one replica per scrape)',
    );
  });

  test('metric names are read out of PromQL as expected', () => {
    assert.deepEqual(
      metricNames('sum by (node) (rate(a_total{node=~"$node", x="y{z}"}[5m])) / max by (node) (b) > 0.9 and on () hour() >= 7'),
      ['a_total', 'b'],
    );
    assert.deepEqual(metricNames('x_total unless x_total offset 15m or up == 0'), ['x_total', 'up']);
    assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))'), ['h_bucket']);
  });
});

describe('Prometheus scraping the running services', () => {
  let stack: Stack;
  let sim: Simulator;
  let prometheus: ChildProcess;
  const prometheusOutput: string[] = [];

  before(async () => {
    sim = await startStackSimulator({ bridges: bridgesWithCredentials(['cms-1', 'cms-2']), seed: 20261130 });
    const { dir, configFile } = writeConfigFile('prometheus-e2e-', {
      cms: { nodes: cmsNodesOf(sim, { maxWritesPerSecond: 5 }) },
      policy: { secureDomains: [SECURE], internalDomains: [INTERNAL] },
      // Passes every second, so the reconciliation panels have several inside their window.
      actuator: { reconcileIntervalSeconds: 1 },
    });
    stack = await startStack({ services: SERVICES, env: { CONFIG_FILE: configFile } });
    sendCdrsToStack(sim, stack);

    // The repo's scrape config, its compose names (found through Docker's DNS) replaced by where the stack serves /metrics.
    const repoConfig = parse(readFileSync(path.join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8')) as {
      global: Record<string, string>;
      rule_files: string[];
      scrape_configs: { job_name: string; dns_sd_configs: unknown }[];
    };
    const config = {
      ...repoConfig,
      global: { ...repoConfig.global, scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: repoConfig.rule_files.map((file) => path.join(PROMETHEUS_DIR, file)),
      scrape_configs: repoConfig.scrape_configs.map(({ dns_sd_configs: _compose, ...job }) => ({
        ...job,
        static_configs: [{ targets: [new URL(stack.metricsUrl(job.job_name as ServiceName)).host] }],
      })),
    };
    writeFileSync(path.join(dir, 'prometheus.yml'), stringify(config));
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.on('data', (d) => prometheusOutput.push(String(d)));
    prometheus.stderr?.on('data', (d) => prometheusOutput.push(String(d)));
    const exited = new Promise((resolve) => prometheus.on('exit', resolve));
    prometheus.on('error', (err) => prometheusOutput.push(`${err.message} (is the prometheus package installed?)`));
    onTestFileEnd(async () => {
      if (prometheus.exitCode === null && prometheus.signalCode === null) {
        prometheus.kill('SIGTERM');
        await exited;
      }
    });
    await eventually(
      async () => {
        if (prometheus.exitCode !== null || prometheus.spawnfile === undefined) throw new Error(prometheusOutput.join(''));
        return (await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined))?.ok ?? false;
      },
      { what: `prometheus ready: ${prometheusOutput.join('')}`, timeoutMs: 20_000 },
    );

    // A short scenario: a meeting on both bridges (CDRs from each, a security level, CMS writes), a refused sender,
    // a malformed body and a batch reporting discarded records.
    const meeting = sim.startCall({ name: 'Monitored', bridges: [] });
    const alice = sim.join({ meeting, bridge: 'cms-1', remoteParty: `alice@${SECURE}` });
    sim.join({ meeting, bridge: 'cms-2', remoteParty: `bob@${INTERNAL}` });
    const post = async (url: string, body: string) => {
      const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'text/xml' } });
      await res.arrayBuffer();
      return res.status;
    };
    const ingest = stack.url('cdr-ingest');
    assert.equal(await post(`${ingest}/cdr/cms-2?token=not-the-token`, '<records/>'), 401);
    assert.equal(await post(`${ingest}/cdr/cms-2?token=${stack.ingestToken}`, 'not xml'), 400);
    // A node's first gap, after Prometheus has seen its counter at 0 (as it has in production, scraping all along).
    await eventually(async () => (await query('cdr_gaps_total{node="cms-2"} == 0')).length > 0, {
      what: "cms-2's gap counter scraped at 0",
    });
    const [first] = simpleCallRecords();
    const gapBatch = recordsXml({
      session: randomUUID(),
      records: [{ ...(first as NonNullable<typeof first>), extraAttributes: ' numPreceedingRecordsMissing="3"' }],
    });
    assert.equal(await post(`${ingest}/cdr/cms-2?token=${stack.ingestToken}`, gapBatch), 200);
    await eventually(() => sim.writeLog({ method: 'PUT', urlContains: alice.callId }).some((w) => w.outcome === 'applied'), {
      what: 'the security message written to cms-1',
      timeoutMs: 30_000,
    });
    // Panels show rates over the last minute: keep CDRs coming from both bridges while the tests look (a visitor joins
    // one bridge and leaves the other each second; the meeting's level stays where it is).
    let visitor: string | undefined;
    let turn = 0;
    const traffic = setInterval(() => {
      turn += 1;
      if (visitor) sim.leave(visitor);
      visitor = sim.join({ meeting, bridge: turn % 2 ? 'cms-1' : 'cms-2', remoteParty: `visitor${turn}@${INTERNAL}` }).callLegId;
    }, 1000);
    onTestFileEnd(() => clearInterval(traffic));
    await eventually(
      async () => (await api<{ activeTargets: { health: string }[] }>('/api/v1/targets')).activeTargets.every((t) => t.health === 'up'),
      {
        what: 'every service scraped',
      },
    );
  });

  test('every metric a dashboard panel or an alert rule uses is in the scrape', async () => {
    const queries = [...dashboardQueries(), ...alertQueries()];
    const used = new Map<string, string>();
    for (const q of queries) for (const name of metricNames(q.expr)) used.set(name, q.where);
    assert.ok(used.size > 20, `metrics found in the queries: ${[...used.keys()].join(', ')}`);
    let missing: string[] = [];
    await eventually(
      async () => {
        const scraped = new Set(await api<string[]>('/api/v1/label/__name__/values'));
        missing = [...used].filter(([name]) => !scraped.has(name)).map(([name, where]) => `${name} (${where})`);
        return missing.length === 0;
      },
      { what: 'every metric in the scrape', timeoutMs: 20_000 },
    ).catch(() => {});
    assert.deepEqual(missing, [], 'metrics used but not scraped');
  });

  test("every panel's query returns data", async () => {
    const queries = dashboardQueries();
    assert.ok(queries.length >= 15, `${queries.length} panel queries`);
    const empty = new Map<string, string>();
    await eventually(
      async () => {
        empty.clear();
        for (const q of queries) {
          const expr = withGrafanaVariables(q.expr);
          if (finite(await query(expr)).length === 0) empty.set(q.where, expr);
        }
        return empty.size === 0;
      },
      { what: 'data for every panel', timeoutMs: 30_000, intervalMs: 1000 },
    ).catch(() => {});
    assert.deepEqual([...empty], [], 'panels whose query returns no (finite) value');
  });

  test('the panels show what happened', async () => {
    const value = async (expr: string, labels: Record<string, string> = {}) => {
      const rows = await query(withGrafanaVariables(expr));
      const row = rows.find((r) => Object.entries(labels).every(([k, v]) => r.metric[k] === v));
      return row ? Number(row.value[1]) : undefined;
    };
    // Counter rates need two scrapes after the event; the gauges are read at scrape.
    await eventually(async () => ((await value('sum by (node) (increase(cdr_ingest_records_total[1m]))', { node: 'cms-1' })) ?? 0) > 0, {
      what: 'CDRs from cms-1 counted',
    });
    await eventually(async () => ((await value('sum by (node) (cdr_gaps_total)', { node: 'cms-2' })) ?? 0) === 3, {
      what: 'the gap of 3 records',
    });
    // The gaps panel's increase() sees that first gap: the configured node's counter was there at 0 before it.
    const gapPanel = await value('sum by (node) (increase(cdr_gaps_total{node=~"$node"}[1h]))', { node: 'cms-2' });
    assert.ok(gapPanel !== undefined && gapPanel > 2.5, `gaps panel for cms-2: ${gapPanel}`);
    assert.ok(((await value('sum by (reason) (cdr_ingest_posts_refused_total)', { reason: 'unauthorized' })) ?? 0) >= 1);
    assert.ok(((await value('sum by (reason) (cdr_ingest_posts_refused_total)', { reason: 'bad_request' })) ?? 0) >= 1);
    await eventually(async () => ((await value('sum(meeting_participants_active)')) ?? 0) >= 2, { what: 'the two participants counted' });
    assert.ok(((await value('sum by (node) (cms_writes_total{outcome="applied"})', { node: 'cms-1' })) ?? 0) >= 1);
    const silence = await value('(time() - max by (node) (cdr_ingest_last_record_timestamp_seconds)) / 60', { node: 'cms-1' });
    assert.ok(silence !== undefined && silence >= 0 && silence < 1, `minutes since cms-1's last CDR: ${silence}`);
    assert.equal(await value('min by (job) (service_ready)', { job: 'cms-actuator' }), 1);
  });

  test('Prometheus evaluates every alert rule without error, and none fires for this healthy stack', async () => {
    type Rule = { name: string; health: string; lastError?: string; state?: string; type: string };
    let rules: Rule[] = [];
    await eventually(
      async () => {
        const data = await api<{ groups: { rules: Rule[] }[] }>('/api/v1/rules');
        rules = data.groups.flatMap((g) => g.rules);
        return rules.length > 0 && rules.every((r) => r.health !== 'unknown');
      },
      { what: 'every rule evaluated' },
    );
    assert.equal(rules.length, alertQueries().length);
    assert.deepEqual(
      rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`),
      [],
    );
    // The gap posted above fires CdrGap, and the refused POSTs may count towards the senders' alert: those are right.
    const firing = rules.filter((r) => r.state === 'firing' && !['CdrGap', 'CdrRecordsQuarantined'].includes(r.name)).map((r) => r.name);
    assert.deepEqual(firing, []);
  });
});
