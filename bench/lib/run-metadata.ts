/**
 * What a results block must say to be read later: the code (commit, and whether the tree had changes), the exact
 * command, and the Redis and Postgres settings that decide what a durable write costs (AOF and its fsync policy,
 * synchronous_commit, fsync, autovacuum), plus how busy the machine was (load average at start and end).
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pg } from '@cms/db';
import { createRedisConnection } from '@cms/queue';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function git(args: string[]): string {
  try {
    // trimEnd: a status line starts with a space when only the working tree changed.
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trimEnd();
  } catch {
    return '';
  }
}

/** The commit, and the paths of the code that runs (not results files) changed in the working tree, if any. */
export function codeVersion(): string {
  const commit = git(['rev-parse', '--short=10', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--untracked-files=no', '--', 'services', 'libs', 'tools', 'bench', ':!bench/results'])
    .split('\n')
    .filter(Boolean)
    .map((line) => line.slice(3));
  return dirty.length ? `${commit} + uncommitted changes in ${dirty.join(', ')}` : commit;
}

/** The command as typed: `npm run <script> -- <args>` when run through npm, else node and the script. */
export function commandLine(script: string): string {
  const args = process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`));
  const env = ['REDIS_URL', 'DATABASE_URL'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`);
  const command =
    process.env.npm_lifecycle_event === script
      ? `npm run ${script}${args.length ? ' --' : ''}`
      : `node ${path.relative(ROOT, process.argv[1] ?? '')}`;
  return [...env, command, ...args].join(' ');
}

/** The scheduling priority the benchmark and the services it starts (its children inherit it) ran at. */
export function niceness(): string {
  const nice = os.getPriority();
  return nice === 0 ? 'nice 0 (default priority)' : `nice ${nice} (${nice < 0 ? 'ahead of' : 'behind'} other work on the machine)`;
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' / ');
}

/** The Redis persistence the queues ran with. */
export async function redisSettings(url: string): Promise<string> {
  const redis = createRedisConnection(url, 'worker');
  try {
    const get = async (key: string) => ((await redis.config('GET', key)) as string[])[1] ?? '?';
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
    const save = await get('save');
    return `Redis ${version} at ${new URL(url).host}: appendonly ${await get('appendonly')}, appendfsync ${await get('appendfsync')}, save '${save}'`;
  } finally {
    redis.disconnect();
  }
}

/** The Postgres settings that decide what a commit costs. */
export async function postgresSettings(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const names = ['server_version', 'synchronous_commit', 'fsync', 'wal_level', 'autovacuum', 'shared_buffers'];
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      'SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1::text[])',
      [names],
    );
    const value = (name: string) => {
      const row = rows.find((r) => r.name === name);
      if (!row) return '?';
      return name === 'shared_buffers' && row.unit === '8kB' ? `${Math.round((Number(row.setting) * 8) / 1024)} MB` : row.setting;
    };
    return `Postgres ${value('server_version')}: ${names
      .slice(1)
      .map((n) => `${n} ${value(n)}`)
      .join(', ')}`;
  } finally {
    await client.end();
  }
}
