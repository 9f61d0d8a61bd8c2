/**
 * CPU time per process group during a benchmark, read from /proc (Linux). On a machine where the load generator,
 * our services, Redis and PostgreSQL share the same cores, this says where the CPU goes, which the throughput
 * figure alone cannot.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessGroup {
  name: string;
  /**
   * Pids of the group, or a predicate on a process's command name (`comm`) and, read only when asked for, its
   * command line (a PostgreSQL backend's names its database) to find them at each reading.
   */
  match: readonly number[] | ((comm: string, cmdline: () => string) => boolean);
}

type Reading = Map<string, number>;

const CLOCK_TICKS_PER_SECOND = 100;

/** Seconds of user + system CPU each group has used so far; null where /proc cannot be read (not Linux). */
export function readCpu(groups: readonly ProcessGroup[]): Reading | null {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return null;
  }
  const reading: Reading = new Map(groups.map((g) => [g.name, 0]));
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited since the directory was listed
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const seconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    const cmdline = () => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      } catch {
        return '';
      }
    };
    for (const group of groups) {
      const matches = typeof group.match === 'function' ? group.match(comm, cmdline) : group.match.includes(Number(pid));
      if (matches) reading.set(group.name, (reading.get(group.name) ?? 0) + seconds);
    }
  }
  return reading;
}

/** CPU microseconds per unit of work (a POST) for each group between two readings. */
export function cpuPerUnit(before: Reading, after: Reading, units: number): [string, number][] {
  return [...after].map(([name, seconds]) => [name, ((seconds - (before.get(name) ?? 0)) * 1e6) / units]);
}

/** Busy and total CPU seconds of the whole machine so far (/proc/stat), or null where there is none. */
function machineCpu(): { busy: number; total: number } | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: (total - idle) / CLOCK_TICKS_PER_SECOND, total: total / CLOCK_TICKS_PER_SECOND };
  } catch {
    return null;
  }
}

/** CPU one process group used during a phase. */
export interface CpuFigure {
  name: string;
  seconds: number;
  /** seconds / the phase's wall time: how many cores it kept busy. */
  cores: number;
  /** Microseconds per unit of work (a POST, or a write). */
  perUnitUs: number;
}

/** CPU of each group between two readings, per unit of work and in cores kept busy over `wallSeconds`. */
export function cpuFigures(
  groups: ProcessGroup[],
  measure: () => Promise<number>,
): Promise<{ figures: CpuFigure[]; wallSeconds: number; busyCores: number }> {
  const before = readCpu(groups);
  const machineBefore = machineCpu();
  const started = performance.now();
  return measure().then((units) => {
    const wallSeconds = (performance.now() - started) / 1000;
    const after = readCpu(groups);
    const machineAfter = machineCpu();
    const busyCores = machineBefore && machineAfter ? (machineAfter.busy - machineBefore.busy) / wallSeconds : Number.NaN;
    const figures = groups.map(({ name }) => {
      const seconds = before && after ? (after.get(name) ?? 0) - (before.get(name) ?? 0) : Number.NaN;
      return { name, seconds, cores: seconds / wallSeconds, perUnitUs: (seconds * 1e6) / units };
    });
    return { figures, wallSeconds, busyCores };
  });
}

/** The PostgreSQL backends serving one database (their command line names it): a run's share of a shared server. */
export function databaseBackends(databaseName: string): ProcessGroup {
  return {
    name: "PostgreSQL backends of this run's database",
    match: (comm, cmdline) => comm === 'postgres' && cmdline().includes(` ${databaseName} `),
  };
}
