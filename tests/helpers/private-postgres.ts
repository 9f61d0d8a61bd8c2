/**
 * A PostgreSQL server of a test's own (initdb + pg_ctl from the machine's PostgreSQL binaries, on a free port,
 * in a temporary folder), so a test can crash it, stop it and start it again without touching the shared
 * server that other test files use at the same time.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { onTestFileEnd } from './infra.ts';
import { freePort } from './stack.ts';

/**
 * How the server stops. `fast` is an orderly shutdown (clients are told and disconnected); `immediate` is
 * the crash case: every server process quits at once, open connections just drop, and the next start runs
 * crash recovery from the WAL.
 */
type StopMode = 'fast' | 'immediate';

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  url: string;
  port: number;
  /** Starts the server again from its folder, on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops the server (default `immediate`, i.e. a crash); resolves once every server process has exited. */
  stop(mode?: StopMode): Promise<void>;
  /** stop(mode) then start(). */
  restart(mode?: StopMode): Promise<void>;
  /** Stops the server and removes its folder. Also runs by itself when the test file ends. */
  close(): Promise<void>;
}

/** The folder holding initdb, pg_ctl and postgres; PG_BINDIR wins, then pg_config, then the Debian layout, then PATH. */
function serverBinDir(): string {
  const hasServer = (dir: string) =>
    existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')) && existsSync(join(dir, 'postgres'));
  const candidates: string[] = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // No pg_config (it comes with the client development package): look elsewhere.
  }
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const version of versions) candidates.push(`/usr/lib/postgresql/${version}/bin`);
  } catch {
    // Not the Debian/Ubuntu layout.
  }
  // initdb on PATH is often a symlink (or a Debian wrapper) into the real folder.
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'initdb'))) candidates.push(dirname(realpathSync(join(dir, 'initdb'))));
  }
  const found = candidates.find(hasServer);
  if (!found) {
    throw new Error(
      `no PostgreSQL server binaries (initdb, pg_ctl, postgres) found in ${candidates.join(', ') || 'any known place'}: install the PostgreSQL server or set PG_BINDIR`,
    );
  }
  return found;
}

/** initdb refuses to run as root: then the server runs as the machine's `postgres` user. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root and there is no "postgres" user to run a private PostgreSQL server as (initdb refuses root)');
  }
}

function run(bin: string, args: string[], user: { uid: number; gid: number } | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const output: string[] = [];
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(user ?? {}), env: { ...process.env, LC_ALL: 'C' } });
    child.stdout.on('data', (d) => output.push(String(d)));
    child.stderr.on('data', (d) => output.push(String(d)));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${bin} ${args.join(' ')} exited with ${code}:\n${output.join('')}`));
    });
  });
}

/** initdb's own folder, a free port, started. Stopped and removed when the test file ends. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = serverBinDir();
  const user = serverUser();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cms-test-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  // Trust on 127.0.0.1 only; the Unix socket lives in the test's folder so it never meets the machine's server.
  // fsync off: a crash of the server processes (what the tests simulate) loses nothing the OS already has; commits
  // stay synchronous, so a commit that was answered is in the WAL and survives an immediate stop.
  const options = [`-p ${port}`, '-h 127.0.0.1', `-k ${dir}`, '-c fsync=off', '-c full_page_writes=off', '-c max_connections=50'].join(' ');
  await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], user);

  let running = false;
  let closed = false;
  const server: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async start() {
      if (closed) throw new Error('private PostgreSQL was closed');
      if (running) return;
      await run(join(bin, 'pg_ctl'), ['-D', data, '-l', log, '-o', options, '-w', '-t', '60', 'start'], user);
      running = true;
    },
    async stop(mode = 'immediate') {
      if (!running) return;
      // -w: returns once the postmaster (and so every backend) has exited and the port is free again.
      await run(join(bin, 'pg_ctl'), ['-D', data, '-m', mode, '-w', '-t', '60', 'stop'], user);
      running = false;
    },
    async restart(mode = 'immediate') {
      await server.stop(mode);
      await server.start();
    },
    async close() {
      if (closed) return;
      try {
        await server.stop('immediate');
      } finally {
        closed = true;
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  onTestFileEnd(() => server.close());
  await server.start();
  return server;
}
