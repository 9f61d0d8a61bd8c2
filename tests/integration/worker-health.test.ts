/**
 * A BullMQ worker that stops taking jobs while its process stays up makes the service not ready, naming the queue:
 * a worker closed outside the service's shutdown (policy worker and actuator), and a worker whose Redis connection
 * is closed for good. A service started with exitWhenWorkerStops (as main.ts starts it) exits with code 1 so its
 * supervisor restarts it. A normal shutdown is not reported as a failure.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { before, describe, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { loadConfig } from '@cms/config';
import type { Database } from '@cms/db';
import { createLogger, type Logger } from '@cms/observability';
import { CDR_BATCHES_QUEUE, CMS_RECONCILE_QUEUE, cmsWritesQueueName } from '@cms/queue';
import type { FastifyInstance } from 'fastify';
import { buildActuator } from '../../services/cms-actuator/src/app.ts';
import { buildPolicyWorker, type PolicyWorkerService } from '../../services/policy-worker/src/app.ts';
import { eventually, onTestFileEnd, type TestDatabase, testDatabase, testRedis } from '../helpers/infra.ts';

const NODE = 'cms-wh';
const PASSWORD = 'worker-health-pass';

interface LogLine {
  level: number;
  msg: string;
  queue?: string;
  reason?: string;
}

/** A logger whose lines the test can read. */
function capturingLogger(service: string): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { log: createLogger(service, 'info', {}, destination), lines };
}

const PINO_ERROR = 50;

interface Check {
  name: string;
  ok: boolean;
  error?: string;
}

async function readiness(app: FastifyInstance): Promise<{ status: number; checks: Check[] }> {
  const res = await app.inject('/readyz');
  return { status: res.statusCode, checks: (res.json() as { checks: Check[] }).checks };
}

/** Waits for /readyz to answer 200: every dependency reachable and every worker running. */
async function waitReady(app: FastifyInstance): Promise<void> {
  await eventually(async () => (await readiness(app)).status === 200, { what: '/readyz to answer 200', timeoutMs: 30_000 });
}

/** Waits for the `workers` check to fail, and returns the answer. */
async function waitWorkersFailing(app: FastifyInstance, timeoutMs = 15_000): Promise<{ status: number; checks: Check[] }> {
  return eventually(
    async () => {
      const r = await readiness(app);
      return r.checks.find((c) => c.name === 'workers')?.ok === false ? r : undefined;
    },
    { what: 'the workers check to fail', timeoutMs },
  );
}

let database: TestDatabase;
let db: Database;

before(async () => {
  database = await testDatabase();
  db = database.db;
});

async function startPolicyWorker(log: Logger): Promise<PolicyWorkerService> {
  const redis = await testRedis();
  const config = loadConfig({
    env: {},
    overrides: { redis: { url: redis.url }, queue: { prefix: redis.prefix }, database: { url: database.url } },
  });
  const service = await buildPolicyWorker({ config, db, log });
  onTestFileEnd(() => service.close());
  return service;
}

describe('a BullMQ worker that stops makes its service not ready', () => {
  test('policy worker: the CDR batch worker closed outside the shutdown fails /readyz naming cdr-batches', async () => {
    const { log, lines } = capturingLogger('policy-worker');
    const service = await startPolicyWorker(log);
    await waitReady(service.app);

    // Not the service's close(): something else closed its worker, and nothing takes CDR batches any more.
    await service.worker.close();

    const r = await waitWorkersFailing(service.app);
    assert.equal(r.status, 503);
    const workers = r.checks.find((c) => c.name === 'workers');
    assert.match(workers?.error ?? '', new RegExp(`queue ${CDR_BATCHES_QUEUE}: worker closed`));
    // Redis and Postgres are fine: before, /readyz said "ready" for a service that took no batches.
    assert.ok(
      r.checks.filter((c) => c.name !== 'workers').every((c) => c.ok),
      JSON.stringify(r.checks),
    );

    // One error line, naming the queue, however often readiness is asked.
    await readiness(service.app);
    const errors = lines.filter((l) => l.level >= PINO_ERROR && l.queue === CDR_BATCHES_QUEUE);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0]?.msg ?? '', /worker for queue cdr-batches stopped/);
  });

  test("policy worker: the worker's Redis connection closed for good fails /readyz naming cdr-batches", async () => {
    const { log } = capturingLogger('policy-worker');
    const service = await startPolicyWorker(log);
    await waitReady(service.app);

    // The connection ends (status `end`: ioredis will not reconnect). BullMQ keeps its job loop "running", retrying
    // every 15 s for ever, so only the connection's state shows that the worker takes nothing.
    const client = await service.worker.getBackend().client;
    client.disconnect();
    assert.ok(service.worker.isRunning(), 'BullMQ still calls its loop running');

    // Counted after the connection has stayed closed for the grace period (10 s).
    const r = await waitWorkersFailing(service.app, 40_000);
    assert.equal(r.status, 503);
    assert.match(r.checks.find((c) => c.name === 'workers')?.error ?? '', new RegExp(`queue ${CDR_BATCHES_QUEUE}: .*closed for good`));
  });

  test('actuator: a node writer and the reconcile worker closed outside the shutdown fail /readyz naming their queues', async () => {
    const sim: Simulator = await startSimulator({ controlPort: null, bridges: [{ name: NODE, password: PASSWORD }] });
    onTestFileEnd(() => sim.stop());
    const bridge = sim.bridge(NODE);
    const redis = await testRedis();
    const config = loadConfig({
      env: {},
      overrides: {
        redis: { url: redis.url },
        queue: { prefix: redis.prefix },
        actuator: { reconcileIntervalSeconds: 0 },
        cms: { nodes: [{ name: NODE, url: bridge.url, username: bridge.username, password: bridge.password }] },
      },
    });
    const { log, lines } = capturingLogger('cms-actuator');
    const service = await buildActuator({ config, db, log, tuning: { healthProbeIntervalMs: 100 } });
    onTestFileEnd(() => service.close());
    await waitReady(service.app);

    await service.writers.get(NODE)!.worker.close();
    await service.reconciliation.worker.close();

    const r = await eventually(
      async () => {
        const answer = await readiness(service.app);
        const error = answer.checks.find((c) => c.name === 'workers')?.error ?? '';
        return error.includes(CMS_RECONCILE_QUEUE) && error.includes(cmsWritesQueueName(NODE)) ? answer : undefined;
      },
      { what: 'the workers check to name both queues' },
    );
    assert.equal(r.status, 503);
    const named = new Set(lines.filter((l) => l.level >= PINO_ERROR).map((l) => l.queue));
    assert.deepEqual([...named].sort(), [cmsWritesQueueName(NODE), CMS_RECONCILE_QUEUE].sort());
  });

  test('a normal shutdown is not reported as a stopped worker', async () => {
    const { log, lines } = capturingLogger('policy-worker');
    const service = await startPolicyWorker(log);
    await waitReady(service.app);
    await service.close();
    const errors = lines.filter((l) => l.level >= PINO_ERROR);
    assert.deepEqual(errors, []);
  });

  test('started as main.ts starts it, the service exits with code 1 when a worker stops, so a supervisor restarts it', async () => {
    const redis = await testRedis();
    const overrides = { redis: { url: redis.url }, queue: { prefix: redis.prefix }, database: { url: database.url } };
    // A process of its own (the exit would end this test file): builds the policy worker with exitWhenWorkerStops, waits
    // until it is ready, then closes its batch worker the way a fault would, outside the shutdown path. Exit code 3
    // means it was still running 30 s later.
    const script = `
      import { loadConfig } from '@cms/config';
      import { buildPolicyWorker } from './services/policy-worker/src/app.ts';
      const config = loadConfig({ env: {}, overrides: ${JSON.stringify(overrides)} });
      const service = await buildPolicyWorker({ config, exitWhenWorkerStops: true });
      for (;;) {
        const res = await service.app.inject('/readyz');
        if (res.statusCode === 200) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      setTimeout(() => process.exit(3), 30_000);
      await service.worker.close();
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: join(import.meta.dirname, '..', '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onTestFileEnd(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += String(d);
    });
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 1, `exit code ${code}; stderr: ${stderr}`);
    const errors = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine)
      .filter((l) => l.level >= PINO_ERROR);
    assert.equal(errors.length, 1, stdout);
    assert.equal(errors[0]?.queue, CDR_BATCHES_QUEUE);
    assert.match(errors[0]?.msg ?? '', /exiting so the supervisor restarts the service/);
  });
});
