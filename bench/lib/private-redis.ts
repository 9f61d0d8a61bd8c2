/**
 * A Redis of the benchmark's own, persisting as deployed (compose runs `--appendonly yes --appendfsync everysec`):
 * the queues' cost includes the AOF writes, and the machine's shared Redis (other work's tests use it) keeps its
 * settings. Started on a free port in a temp dir, removed on stop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRedisConnection } from '@cms/queue';
import { freePort } from './processes.ts';

export interface PrivateRedis {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startPrivateRedis(binary = 'redis-server'): Promise<PrivateRedis> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-redis-'));
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${binary} exited during start-up`);
    // No reconnecting: a refused connection fails the ping at once, and the loop tries again.
    const probe = createRedisConnection(url, 'worker', { retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    const ok = await probe.ping().then(
      () => true,
      () => false,
    );
    probe.disconnect();
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`${binary} on port ${port} not answering within 10 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
