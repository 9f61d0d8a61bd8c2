/**
 * The Health page as docker compose sees it: records-api asks each service's /readyz where console.serviceUrls says
 * (not at the service's port on its own host), and a CMS node whose credentials are refused (401) shows its writes as
 * held, from cms_node_status.health, which the actuator writes.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import pg from 'pg';
import { eventually, onTestFileEnd } from '../helpers/infra.ts';
import { freePort } from '../helpers/stack.ts';
import { type ConsoleStack, STACK_START_MS, signIn, startConsoleStack, VIEWER_TOKEN } from './console-stack.ts';

let c: ConsoleStack;
/** Ports nothing listens on: what records-api believes policy-worker's and cms-actuator's ports are. */
let deadPorts: { policyWorker: number; actuator: number };

interface Health {
  services: { name: string; url: string; ready: boolean; detail: string }[];
  nodes: { node: string; mode: string | null; health: string | null }[];
}

before(
  async () => {
    deadPorts = { policyWorker: await freePort(), actuator: await freePort() };
    c = await startConsoleStack({
      seed: 20261210,
      refusedNodes: ['cms-2'],
      // records-api's own view of the other services' ports is wrong, as it is in a container of its own; the
      // configured URLs are the only way it can reach them.
      serviceEnv: (stack) => ({
        'records-api': {
          POLICY_WORKER_PORT: String(deadPorts.policyWorker),
          ACTUATOR_PORT: String(deadPorts.actuator),
          CONSOLE_POLICY_WORKER_URL: stack.url('policy-worker'),
          CONSOLE_CMS_ACTUATOR_URL: `${stack.url('cms-actuator')}/`,
        },
      }),
    });
  },
  { timeout: STACK_START_MS },
);

async function health(): Promise<Health> {
  const res = await fetch(`${c.baseUrl}/console/api/health`, { headers: { authorization: `Bearer ${c.stack.apiToken}` } });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Health;
}

test('readiness is asked at the configured service URLs; unset, at the configured port on records-api host', {
  timeout: 120_000,
}, async () => {
  const found = await eventually(
    async () => {
      const h = await health();
      const actuator = h.services.find((s) => s.name === 'cms-actuator');
      // The actuator answers, and says why it is not ready: the refused node (not "not reachable from records-api").
      return h.services.find((s) => s.name === 'policy-worker')?.ready && /cms-2/.test(actuator?.detail ?? '') ? h : false;
    },
    { what: 'policy-worker ready and cms-actuator answering at their configured URLs', timeoutMs: 60_000, intervalMs: 500 },
  );
  const byName = new Map(found.services.map((s) => [s.name, s]));
  assert.equal(byName.get('policy-worker')?.url, `${c.stack.url('policy-worker')}/readyz`);
  assert.equal(byName.get('cms-actuator')?.url, `${c.stack.url('cms-actuator')}/readyz`, 'one slash before readyz');
  assert.equal(byName.get('cms-actuator')?.ready, false, 'a node refusing our credentials keeps the actuator not ready');
  assert.doesNotMatch(byName.get('cms-actuator')?.detail ?? '', /not reachable/);
  // Nothing configured for cdr-ingest: asked at its metrics port on this host, as before.
  assert.equal(byName.get('cdr-ingest')?.url, `${c.stack.metricsUrl('cdr-ingest')}/readyz`);
  assert.equal(byName.get('cdr-ingest')?.ready, true);
  assert.ok(!found.services.some((s) => s.url.includes(`:${deadPorts.policyWorker}/`) || s.url.includes(`:${deadPorts.actuator}/`)));
});

test('a node whose credentials CMS refuses (401) shows its writes held on the Health page, from cms_node_status', {
  timeout: 180_000,
}, async () => {
  const db = new pg.Client({ connectionString: c.stack.databaseUrl });
  await db.connect();
  onTestFileEnd(() => db.end());
  const healthOf = async (node: string) =>
    (await db.query<{ health: string | null }>('SELECT health FROM cms_node_status WHERE node = $1', [node])).rows[0]?.health;
  // The actuator holds the node's writes at its start-up probe and records the write health once it next checks it.
  await eventually(async () => (await healthOf('cms-2')) === 'held', {
    what: 'cms-2 held in cms_node_status',
    timeoutMs: 90_000,
    intervalMs: 500,
  });
  await eventually(async () => (await healthOf('cms-1')) === 'ok', {
    what: 'cms-1 ok in cms_node_status',
    timeoutMs: 30_000,
    intervalMs: 500,
  });
  const nodes = new Map((await health()).nodes.map((n) => [n.node, n]));
  assert.equal(nodes.get('cms-2')?.health, 'held');
  assert.equal(nodes.get('cms-1')?.health, 'ok');

  const context = await c.context();
  const page = await context.newPage();
  await signIn(page, VIEWER_TOKEN, '/health');
  const card = (node: string) => page.locator(`[data-node="${node}"]`);
  await card('cms-2').waitFor();
  await eventually(async () => /writes held/.test(await card('cms-2').innerText()), {
    what: 'cms-2 writes held on screen',
    timeoutMs: 20_000,
  });
  assert.match(await card('cms-2').innerText(), /refused our API credentials or certificate/, 'what held means');
  assert.match((await card('cms-2').getAttribute('class')) ?? '', /\bbad\b/, 'marked as a problem');
  assert.match(await card('cms-1').innerText(), /writes ok/);
  assert.doesNotMatch((await card('cms-1').getAttribute('class')) ?? '', /\bbad\b/);
  assert.doesNotMatch(await page.locator('main').innerText(), /write health unknown/);
  // The services' cards come from the configured URLs too.
  assert.match(await page.locator('[data-service="policy-worker"]').innerText(), /\bready\b/);
  assert.doesNotMatch(await page.locator('[data-service="policy-worker"]').innerText(), /not ready/);
  await context.close();
});
