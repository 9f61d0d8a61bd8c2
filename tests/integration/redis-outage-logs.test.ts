/**
 * What the services print while Redis is away: every line on stdout and stderr is one JSON log line. Before, the
 * actuator's per-node queues had no `error` listener and BullMQ printed each Redis error as a raw stack trace on
 * stderr. Runs the real processes against a private redis-server that the test kills and starts again.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually, onTestFileEnd, testDatabase, uniqueName } from '../helpers/infra.ts';
import { startPrivateRedis } from '../helpers/private-redis.ts';
import { freePort } from '../helpers/stack.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Proc {
  name: string;
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
}

function lines(chunks: string[]): string[] {
  return chunks
    .join('')
    .split('\n')
    .filter((l) => l.trim() !== '');
}

function start(name: string, service: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [`services/${service}/src/main.ts`], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: Proc = { name, child, stdout: [], stderr: [] };
  child.stdout?.on('data', (d) => proc.stdout.push(String(d)));
  child.stderr?.on('data', (d) => proc.stderr.push(String(d)));
  onTestFileEnd(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
  return proc;
}

function logged(proc: Proc, message: RegExp): boolean {
  return lines(proc.stdout).some((l) => {
    try {
      return message.test(JSON.parse(l).msg);
    } catch {
      return false;
    }
  });
}

function assertOnlyJson(proc: Proc): void {
  for (const [stream, chunks] of [
    ['stdout', proc.stdout],
    ['stderr', proc.stderr],
  ] as const) {
    for (const line of lines(chunks)) {
      assert.doesNotThrow(() => JSON.parse(line), `${proc.name} ${stream} printed a line that is not JSON: ${line}`);
    }
  }
}

describe('services while Redis is killed and started again', () => {
  test('print only JSON log lines (no raw stack traces on stderr), and say when Redis is back', async () => {
    const redis = await startPrivateRedis();
    const { url: databaseUrl } = await testDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'cms-test-config-'));
    onTestFileEnd(() => rmSync(dir, { recursive: true, force: true }));
    const configFile = join(dir, 'config.yaml');
    // A node nobody answers on: the writer's queue and worker exist all the same, which is what this is about.
    const cmsPort = await freePort();
    writeFileSync(
      configFile,
      `cms:\n  nodes:\n    - name: cms1\n      url: http://127.0.0.1:${cmsPort}\n      username: api\n      password: api-password\n`,
    );
    const env = {
      CONFIG_FILE: configFile,
      REDIS_URL: redis.url,
      DATABASE_URL: databaseUrl,
      QUEUE_PREFIX: uniqueName('logs'),
      INGEST_TOKEN: 'outage-logs-token-0123456789',
      LOG_LEVEL: 'info',
      INGEST_HOST: '127.0.0.1',
      ACTUATOR_HOST: '127.0.0.1',
      INGEST_PORT: String(await freePort()),
      INGEST_METRICS_PORT: String(await freePort()),
      ACTUATOR_PORT: String(await freePort()),
    };
    const procs = [start('cms-actuator', 'cms-actuator', env), start('cdr-ingest', 'cdr-ingest', env)];
    for (const proc of procs) {
      await eventually(() => logged(proc, /Server listening/), { what: `${proc.name} to listen`, timeoutMs: 20_000 });
    }

    await redis.kill();
    for (const proc of procs) {
      await eventually(() => logged(proc, /^redis error/) || proc.stderr.length > 0, {
        what: `${proc.name} to report the lost connection`,
        timeoutMs: 20_000,
      });
    }
    await redis.start();
    for (const proc of procs) {
      await eventually(() => logged(proc, /^redis connection ready again/) || proc.stderr.length > 0, {
        what: `${proc.name} to report Redis back`,
        timeoutMs: 20_000,
      });
    }

    for (const proc of procs) {
      assertOnlyJson(proc);
      assert.equal(proc.child.exitCode, null, `${proc.name} is still running`);
      const errors = lines(proc.stdout)
        .map((l) => JSON.parse(l))
        .filter((l) => /^redis error/.test(l.msg));
      assert.ok(errors.length >= 1, `${proc.name} logged the Redis error`);
      // The error is logged as an object (pino's err serializer: type, message, stack), not as text.
      assert.equal(typeof errors[0].err, 'object');
      assert.match(errors[0].err.message, /ECONNREFUSED|ECONNRESET|EPIPE|Connection is closed|connect/);
    }
  });
});
