/**
 * The process supervisor behind `npm start`: runs each child, restarts one that exits (with back-off), and stops
 * them all on request, escalating to SIGKILL after a bound.
 *
 * Why not `concurrently` (used before): its `restartDelay: 'exponential'` grows as 2^n seconds without a ceiling and
 * never resets, it stops restarting after an exit with code 0, and it reports a restart only when it happens. An
 * operator needs to see, at the moment a service dies, which one, how (code or signal) and when it comes back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import type { Logger } from '@cms/observability';

export interface ChildSpec {
  /** Shown in the log and as the `[name]` prefix of the child's output. */
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this user (Postgres refuses to run as root). */
  uid?: number;
  gid?: number;
  /** The signal that asks the child to stop cleanly: SIGTERM unless said otherwise (Postgres: SIGINT, "fast" shutdown). */
  stopSignal?: NodeJS.Signals;
}

export interface Backoff {
  /** Delay before the first restart after a crash. */
  initialMs: number;
  /** Ceiling of the doubling delay. */
  maxMs: number;
  /** A child that ran at least this long before it exited counts as healthy: its next restart waits `initialMs` again. */
  resetAfterMs: number;
}

/** 1 s doubling to 30 s; a minute of uptime resets it. */
const DEFAULT_BACKOFF: Backoff = { initialMs: 1_000, maxMs: 30_000, resetAfterMs: 60_000 };

/** Delay before restarting a child that has exited `failures` times in a row without staying up (1 for the first). */
export function restartDelayMs(failures: number, backoff: Backoff = DEFAULT_BACKOFF): number {
  const n = Math.max(1, Math.floor(failures));
  // 2 ** n reaches Infinity long before n overflows; Math.min turns that into the ceiling.
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** (n - 1));
}

function formatDelay(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

export interface SpawnEvent {
  name: string;
  pid: number;
}

export interface ExitEvent {
  name: string;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  uptimeMs: number;
  /** Set when the child will be started again (the supervisor is not stopping). */
  restartInMs?: number;
}

export interface SupervisorOptions {
  log: Logger;
  backoff?: Backoff;
  /** How long a child may take to stop after its stop signal before it is killed (SIGKILL). */
  stopTimeoutMs?: number;
  /** Where each line the children print goes; default: this process's stdout/stderr, prefixed `[name] `. */
  output?: (name: string, line: string, stream: 'stdout' | 'stderr') => void;
}

interface Child {
  spec: ChildSpec;
  proc?: ChildProcess;
  /** Resolves when the current run of the child has exited. */
  exited?: Promise<void>;
  running: boolean;
  startedAt: number;
  /** Exits in a row, each after less than `resetAfterMs` of uptime. */
  failures: number;
  restartTimer?: NodeJS.Timeout;
}

function defaultOutput(name: string, line: string, stream: 'stdout' | 'stderr'): void {
  (stream === 'stdout' ? process.stdout : process.stderr).write(`[${name}] ${line}\n`);
}

/**
 * Emits `spawn` (SpawnEvent) each time a child starts and `exit` (ExitEvent) each time one exits.
 * Children run in their own process group, so a Ctrl-C in the terminal reaches only the supervisor, which then stops
 * them once and in order; without that each service would get the terminal's SIGINT and the supervisor's SIGTERM,
 * and take the second as "exit now" instead of finishing its work in hand.
 */
export class Supervisor extends EventEmitter {
  readonly #children = new Map<string, Child>();
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #stopTimeoutMs: number;
  readonly #output: NonNullable<SupervisorOptions['output']>;
  #stopping: Promise<{ forced: string[] }> | undefined;

  constructor(specs: readonly ChildSpec[], options: SupervisorOptions) {
    super();
    this.#log = options.log;
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
    this.#output = options.output ?? defaultOutput;
    for (const spec of specs) this.add(spec);
  }

  /** Adds a child to supervise; it starts with the next `start()` or `startOne(name)`. */
  add(spec: ChildSpec): void {
    if (this.#children.has(spec.name)) throw new Error(`two children named ${spec.name}`);
    this.#children.set(spec.name, { spec, running: false, startedAt: 0, failures: 0 });
  }

  /** Starts every child not yet running. Once stopping, starts nothing. */
  start(): void {
    for (const child of this.#children.values()) this.#startIfIdle(child);
  }

  /** Starts one child now (unless it runs, waits for its restart, or the supervisor is stopping). */
  startOne(name: string): void {
    this.#startIfIdle(this.#child(name));
  }

  #startIfIdle(child: Child): void {
    if (!this.#stopping && !child.running && !child.restartTimer) this.#spawn(child);
  }

  /** The pid of the child's current run, if it is running. */
  pid(name: string): number | undefined {
    const child = this.#child(name);
    return child.running ? child.proc?.pid : undefined;
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /**
   * Stops every child: pending restarts are cancelled, each running child gets its stop signal, and one still
   * running after `stopTimeoutMs` is killed with SIGKILL. Resolves once all have exited, naming those killed.
   */
  stop(): Promise<{ forced: string[] }> {
    this.#stopping ??= this.#stopAll();
    return this.#stopping;
  }

  /** SIGKILL to every running child and its process group, now (a second Ctrl-C). */
  killNow(): void {
    if (!this.#stopping) void this.stop();
    for (const child of this.#children.values()) if (child.running) this.#kill(child);
  }

  #child(name: string): Child {
    const child = this.#children.get(name);
    if (!child) throw new Error(`no child named ${name}`);
    return child;
  }

  #spawn(child: Child): void {
    const { spec } = child;
    child.startedAt = Date.now();
    child.running = true;
    let proc: ChildProcess;
    try {
      proc = spawn(spec.command, [...spec.args], {
        cwd: spec.cwd,
        env: spec.env,
        uid: spec.uid,
        gid: spec.gid,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      // spawn throws synchronously for bad arguments (e.g. a uid it may not take); treat it like a failed start.
      this.#log.error({ child: spec.name, err }, `${spec.name} could not be started: ${(err as Error).message}`);
      this.#onExit(child, undefined, null, null);
      return;
    }
    child.proc = proc;
    for (const stream of ['stdout', 'stderr'] as const) {
      const readable = proc[stream];
      if (readable) createInterface({ input: readable, crlfDelay: Infinity }).on('line', (line) => this.#output(spec.name, line, stream));
    }
    let settled = false;
    child.exited = new Promise<void>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return;
        settled = true;
        this.#onExit(child, proc.pid, code, signal);
        resolve();
      };
      proc.once('exit', finish);
      // 'error' without 'exit' means the process never started (ENOENT, EACCES).
      proc.once('error', (err) => {
        this.#log.error({ child: spec.name, err }, `${spec.name} could not be started: ${err.message}`);
        if (proc.pid === undefined) finish(null, null);
      });
    });
    if (proc.pid !== undefined) {
      this.#log.info({ child: spec.name, pid: proc.pid }, `${spec.name} started (pid ${proc.pid})`);
      this.emit('spawn', { name: spec.name, pid: proc.pid } satisfies SpawnEvent);
    }
  }

  #onExit(child: Child, pid: number | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    const { name } = child.spec;
    child.running = false;
    const uptimeMs = Date.now() - child.startedAt;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (this.#stopping) {
      this.#log.info({ child: name, pid, code, signal }, `${name} stopped (${how})`);
      this.emit('exit', { name, pid, code, signal, uptimeMs } satisfies ExitEvent);
      return;
    }
    child.failures = uptimeMs >= this.#backoff.resetAfterMs ? 1 : child.failures + 1;
    const restartInMs = restartDelayMs(child.failures, this.#backoff);
    const restartAt = new Date(Date.now() + restartInMs).toISOString();
    this.#log.warn(
      { child: name, pid, code, signal, uptimeMs, restartInMs, restartAt, failures: child.failures },
      `${name} exited (${how}); restarting in ${formatDelay(restartInMs)}`,
    );
    child.restartTimer = setTimeout(() => {
      child.restartTimer = undefined;
      if (!this.#stopping) this.#spawn(child);
    }, restartInMs);
    this.emit('exit', { name, pid, code, signal, uptimeMs, restartInMs } satisfies ExitEvent);
  }

  #kill(child: Child): void {
    const pid = child.proc?.pid;
    if (pid === undefined) return;
    try {
      // The child leads its own process group (detached): take anything it started along with it.
      process.kill(-pid, 'SIGKILL');
    } catch {
      child.proc?.kill('SIGKILL');
    }
  }

  async #stopAll(): Promise<{ forced: string[] }> {
    const forced: string[] = [];
    const waits: Promise<void>[] = [];
    for (const child of this.#children.values()) {
      if (child.restartTimer) {
        clearTimeout(child.restartTimer);
        child.restartTimer = undefined;
      }
      if (!child.running || !child.proc || !child.exited) continue;
      const { proc, exited } = child;
      const { name } = child.spec;
      proc.kill(child.spec.stopSignal ?? 'SIGTERM');
      waits.push(
        (async () => {
          let timer: NodeJS.Timeout | undefined;
          const timedOut = await Promise.race([
            exited.then(() => false),
            new Promise<boolean>((resolve) => {
              timer = setTimeout(() => resolve(true), this.#stopTimeoutMs);
            }),
          ]);
          clearTimeout(timer);
          if (timedOut && child.running) {
            this.#log.warn(
              { child: name, pid: proc.pid, afterMs: this.#stopTimeoutMs },
              `${name} did not stop within ${formatDelay(this.#stopTimeoutMs)}: killing it`,
            );
            forced.push(name);
            this.#kill(child);
            await exited;
          }
        })(),
      );
    }
    await Promise.all(waits);
    return { forced };
  }
}
