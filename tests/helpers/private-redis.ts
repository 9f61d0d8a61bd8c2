/**
 * A Redis server of a test's own (the machine's `redis-server` on a free port, in a temporary folder), so a test
 * can kill it, start it again from the same files and check what survived, without touching the shared server
 * that other test files use at the same time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, onTestFileEnd } from './infra.ts';
import { freePort } from './stack.ts';

export interface PrivateRedis {
  port: number;
  url: string;
  /** Starts the server (again) from its folder; resolves once it answers PING. */
  start(): Promise<void>;
  /** kill -9: what Redis had not written to its AOF is lost, as in a crash. */
  kill(): Promise<void>;
  /** SIGTERM: Redis' own orderly shutdown (it writes out its AOF first), as `docker stop` or systemd stop it. */
  stop(): Promise<void>;
}

export interface PrivateRedisOptions {
  /** `appendfsync everysec` with the AOF on, as docker compose runs Redis; otherwise nothing is kept on disk. */
  aof?: boolean;
  /** Pick the port but do not start the server yet (for "Redis down at start-up"). */
  startNow?: boolean;
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => {
      socket.destroy();
      resolve(String(d).startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cms-test-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  args.push(...(options.aof ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no']));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const redis: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      if (child) throw new Error('private Redis is already running');
      const started = spawn('redis-server', args, { stdio: 'ignore' });
      child = started;
      exited = new Promise((resolve) => started.once('exit', () => resolve()));
      await eventually(() => answersPing(port), { what: `private redis-server on port ${port}`, timeoutMs: 10_000 });
    },
    async kill() {
      if (!child) return;
      child.kill('SIGKILL');
      await exited;
      child = undefined;
    },
    async stop() {
      if (!child) return;
      child.kill('SIGTERM');
      await exited;
      child = undefined;
    },
  };
  onTestFileEnd(async () => {
    await redis.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  if (options.startNow !== false) await redis.start();
  return redis;
}
