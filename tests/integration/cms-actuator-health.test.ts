/**
 * The actuator's readiness tells the truth about each CMS node: a node that refuses connections (closed port, Call
 * Bridge stopped) fails its `cms:<node>` check with the reason, as a node that refuses our credentials does, and the
 * check passes again once the node answers.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { loadConfig } from '@cms/config';
import type { Database } from '@cms/db';
import { createLogger, createMetricsRegistry, type Registry } from '@cms/observability';
import { type ActuatorService, buildActuator } from '../../services/cms-actuator/src/app.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';
import { freePort } from '../helpers/stack.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const NODE = 'cms-health';
const PASSWORD = 'actuator-health-pass';

let sim: Simulator;
let db: Database;

before(async () => {
  sim = await startSimulator({ controlPort: null, bridges: [{ name: NODE, password: PASSWORD }] });
  onTestFileEnd(() => sim.stop());
  ({ db } = await testDatabase());
});

async function startActuator(url: string): Promise<{ service: ActuatorService; registry: Registry }> {
  const redis = await testRedis();
  const bridge = sim.bridge(NODE);
  const config = loadConfig({
    env: {},
    overrides: {
      redis: { url: redis.url },
      queue: { prefix: redis.prefix },
      actuator: { reconcileIntervalSeconds: 0 },
      cms: { nodes: [{ name: NODE, url, username: bridge.username, password: bridge.password }] },
    },
  });
  const registry = createMetricsRegistry('cms-actuator');
  const service = await buildActuator({
    config,
    db,
    registry,
    log: createLogger('cms-actuator', 'silent'),
    tuning: { connectTimeoutMs: 1000, requestTimeoutMs: 1000, healthProbeIntervalMs: 100 },
  });
  onTestFileEnd(() => service.close());
  return { service, registry };
}

interface Readiness {
  status: number;
  node: { name: string; ok: boolean; error?: string } | undefined;
}

async function readiness(service: ActuatorService): Promise<Readiness> {
  const res = await service.app.inject('/readyz');
  const body = res.json() as { checks: { name: string; ok: boolean; error?: string }[] };
  return { status: res.statusCode, node: body.checks.find((c) => c.name === `cms:${NODE}`) };
}

async function reachableGauge(registry: Registry): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'cms_node_reachable');
  return metric?.values.find((v) => v.labels.node === NODE)?.value;
}

describe('cms-actuator readiness per CMS node', () => {
  test('a node whose port is closed fails readiness, naming why', async () => {
    const { service, registry } = await startActuator(`http://127.0.0.1:${await freePort()}`);
    const ready = await eventually(
      async () => {
        const r = await readiness(service);
        return r.node?.ok === false ? r : undefined;
      },
      { what: 'the refusing node to fail its check', timeoutMs: 15_000 },
    );
    assert.equal(ready.status, 503);
    assert.match(ready.node?.error ?? '', /cannot be reached/);
    assert.match(ready.node?.error ?? '', /connectionFailed|ECONNREFUSED/);
    assert.equal(await reachableGauge(registry), 0);
  });

  test('a node that stops answering fails readiness, and passes again once it is back', async () => {
    const proxy: TcpProxy = await startTcpProxy('127.0.0.1', sim.bridge(NODE).port);
    onTestFileEnd(() => proxy.close());
    const { service, registry } = await startActuator(`http://127.0.0.1:${proxy.port}`);
    await eventually(async () => (await readiness(service)).status === 200, { what: 'ready while the node answers', timeoutMs: 15_000 });
    assert.equal(await reachableGauge(registry), 1);

    await proxy.cut();
    const down = await eventually(
      async () => {
        const r = await readiness(service);
        return r.node?.ok === false ? r : undefined;
      },
      { what: 'the node to fail its check once it refuses connections', timeoutMs: 15_000 },
    );
    assert.equal(down.status, 503);
    assert.match(down.node?.error ?? '', /cannot be reached/);
    assert.equal(await reachableGauge(registry), 0);

    await proxy.restore();
    await eventually(async () => (await readiness(service)).status === 200, {
      what: 'ready again once the node answers',
      timeoutMs: 15_000,
    });
    assert.equal(await reachableGauge(registry), 1);
  });
});
