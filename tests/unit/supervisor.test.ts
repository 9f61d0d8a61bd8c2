/**
 * The supervisor behind `npm start`, with real child processes: a child that exits is restarted with a doubling,
 * capped delay that resets once the child stayed up; each exit is one log line saying how and when it restarts;
 * stop() cancels pending restarts and kills a child that ignores its stop signal once the deadline passes.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger } from '@cms/observability';
import {
  type Backoff,
  type ExitEvent,
  restartDelayMs,
  type SpawnEvent,
  Supervisor,
  type SupervisorOptions,
} from '../../scripts/lib/supervisor.ts';
import { eventually, onTestFileEnd } from '../helpers/infra.ts';

interface LogLine {
  level: number;
  msg: string;
  child?: string;
  code?: number | null;
  signal?: string | null;
  restartInMs?: number;
  restartAt?: string;
}

function capture(): { lines: LogLine[]; options: Pick<SupervisorOptions, 'log' | 'output'>; output: string[] } {
  const lines: LogLine[] = [];
  const output: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return {
    lines,
    output,
    options: { log: createLogger('start', 'info', {}, sink), output: (name, line) => output.push(`${name}: ${line}`) },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const node = (script: string) => ({ command: process.execPath, args: ['-e', script] });

/** Every child any supervisor here started, killed at the end should a failed test leave one running. */
const spawned = new Set<number>();
function track(supervisor: Supervisor): Supervisor {
  supervisor.on('spawn', (e: SpawnEvent) => spawned.add(e.pid));
  return supervisor;
}
onTestFileEnd(() => {
  for (const pid of spawned) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

describe('restartDelayMs', () => {
  test('doubles from the first delay up to the ceiling, and stays there', () => {
    const backoff: Backoff = { initialMs: 1_000, maxMs: 30_000, resetAfterMs: 60_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 50, 5000].map((n) => restartDelayMs(n, backoff)),
      [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000],
    );
  });
});

describe('Supervisor', () => {
  test('restarts a child that keeps exiting, waiting longer each time up to the ceiling, and logs each exit in one line', async () => {
    const { lines, options } = capture();
    const backoff: Backoff = { initialMs: 100, maxMs: 400, resetAfterMs: 60_000 };
    const supervisor = track(new Supervisor([{ name: 'crasher', ...node('process.exit(3)') }], { ...options, backoff }));
    const exits: (ExitEvent & { at: number })[] = [];
    const spawns: (SpawnEvent & { at: number })[] = [];
    supervisor.on('exit', (e: ExitEvent) => exits.push({ ...e, at: Date.now() }));
    supervisor.on('spawn', (e: SpawnEvent) => spawns.push({ ...e, at: Date.now() }));
    supervisor.start();
    try {
      await eventually(() => exits.length >= 5, { timeoutMs: 30_000, what: 'five exits' });
    } finally {
      await supervisor.stop();
    }
    assert.deepEqual(
      exits.slice(0, 5).map((e) => [e.code, e.restartInMs]),
      [
        [3, 100],
        [3, 200],
        [3, 400],
        [3, 400],
        [3, 400],
      ],
    );
    // Each restart waited at least the delay it announced (after the exit it followed).
    for (let i = 0; i < 4; i++) {
      const exit = exits[i] as ExitEvent & { at: number };
      const next = spawns[i + 1] as SpawnEvent & { at: number };
      assert.ok(next.at - exit.at >= (exit.restartInMs as number) - 5, `restart ${i + 1} came ${next.at - exit.at} ms after the exit`);
    }
    const exitLines = lines.filter((l) => l.child === 'crasher' && l.restartInMs !== undefined);
    assert.equal(exitLines.length, exits.filter((e) => e.restartInMs !== undefined).length, 'one line per exit');
    assert.equal(exitLines[0]?.msg, 'crasher exited (code 3); restarting in 100 ms');
    assert.equal(exitLines[0]?.code, 3);
    assert.ok(!Number.isNaN(Date.parse(exitLines[0]?.restartAt ?? '')), 'the line says when the child restarts');
    assert.equal(exitLines[1]?.msg, 'crasher exited (code 3); restarting in 200 ms');
  });

  test('names the signal that ended a child, and a child that stayed up restarts after the first delay again', async () => {
    const { lines, options } = capture();
    // Up 300 ms each time, longer than resetAfterMs: every exit counts as the first.
    const backoff: Backoff = { initialMs: 50, maxMs: 10_000, resetAfterMs: 200 };
    const supervisor = track(
      new Supervisor([{ name: 'steady', ...node('setTimeout(() => process.exit(1), 300)') }], { ...options, backoff }),
    );
    const exits: ExitEvent[] = [];
    supervisor.on('exit', (e: ExitEvent) => exits.push(e));
    const firstPid = await new Promise<number>((resolve) => {
      supervisor.once('spawn', (e: SpawnEvent) => resolve(e.pid));
      supervisor.start();
    });
    try {
      await eventually(() => exits.length >= 4, { timeoutMs: 30_000, what: 'four exits' });
    } finally {
      await supervisor.stop();
    }
    assert.deepEqual(
      exits.slice(0, 4).map((e) => e.restartInMs),
      [50, 50, 50, 50],
    );
    assert.ok(!alive(firstPid));

    // kill -9 is reported as such.
    const { lines: lines2, options: options2 } = capture();
    const victim = track(
      new Supervisor([{ name: 'victim', ...node('setInterval(() => {}, 1000)') }], {
        ...options2,
        backoff: { initialMs: 100, maxMs: 1_000, resetAfterMs: 60_000 },
      }),
    );
    const pid = await new Promise<number>((resolve) => {
      victim.once('spawn', (e: SpawnEvent) => resolve(e.pid));
      victim.start();
    });
    const respawned = new Promise<number>((resolve) => victim.once('spawn', (e: SpawnEvent) => resolve(e.pid)));
    process.kill(pid, 'SIGKILL');
    const newPid = await respawned;
    await victim.stop();
    assert.notEqual(newPid, pid);
    const line = lines2.find((l) => l.child === 'victim' && l.signal === 'SIGKILL');
    assert.equal(line?.msg, 'victim exited (signal SIGKILL); restarting in 100 ms');
    assert.ok(lines.some((l) => l.child === 'steady' && l.msg === 'steady exited (code 1); restarting in 50 ms'));
  });

  test('stop() sends the stop signal, kills a child that ignores it after the deadline, and cancels pending restarts', async () => {
    const { lines, output, options } = capture();
    const supervisor = track(
      new Supervisor(
        [
          {
            name: 'polite',
            ...node(
              "process.on('SIGTERM', () => { console.log('draining'); setTimeout(() => process.exit(0), 100); }); console.log('ready'); setInterval(() => {}, 1000)",
            ),
          },
          {
            name: 'stubborn',
            ...node("process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('ready'); setInterval(() => {}, 1000)"),
          },
          // Exits at once and is restarted every 500 ms; stop() comes while it waits, and no restart may follow.
          { name: 'crasher', ...node('process.exit(2)') },
        ],
        { ...options, stopTimeoutMs: 1_000, backoff: { initialMs: 500, maxMs: 500, resetAfterMs: 60_000 } },
      ),
    );
    const spawns: SpawnEvent[] = [];
    supervisor.on('spawn', (e: SpawnEvent) => spawns.push(e));
    supervisor.start();
    await eventually(() => output.filter((l) => l.endsWith(': ready')).length === 2 && supervisor.pid('crasher') === undefined, {
      timeoutMs: 30_000,
      what: 'both children ready and the crasher waiting for its restart',
    });
    const pids = { polite: supervisor.pid('polite') as number, stubborn: supervisor.pid('stubborn') as number };
    const crasherRuns = spawns.filter((s) => s.name === 'crasher').length;
    const started = Date.now();
    const { forced } = await supervisor.stop();
    const tookMs = Date.now() - started;

    assert.deepEqual(forced, ['stubborn']);
    assert.ok(tookMs >= 1_000, `stop() returned after ${tookMs} ms, before the deadline`);
    assert.ok(!alive(pids.polite) && !alive(pids.stubborn), 'both children are gone');
    assert.ok(output.includes('polite: draining'), 'the polite child got its stop signal and drained');
    assert.ok(output.includes('stubborn: ignoring SIGTERM'));
    assert.ok(lines.some((l) => l.child === 'stubborn' && l.msg === 'stubborn did not stop within 1 s: killing it'));
    assert.ok(lines.some((l) => l.child === 'polite' && l.msg === 'polite stopped (code 0)'));
    // No restart after stop, and start() does nothing any more. (Waiting is the point: stop() took a second, three restart delays more pass.)
    supervisor.start();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(spawns.filter((s) => s.name === 'crasher').length, crasherRuns, 'the crasher was not started again');
    assert.equal(supervisor.pid('crasher'), undefined);
  });
});
