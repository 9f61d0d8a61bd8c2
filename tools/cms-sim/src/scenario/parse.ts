import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ScenarioError } from '../errors.ts';
import type { LoadSpec, Scenario, ScenarioInput, TimeSpec } from './types.ts';

/** Reads a scenario from an object, YAML/JSON text, or a file path, and checks its shape. */
export function loadScenario(input: ScenarioInput): Scenario {
  if (typeof input !== 'string') return validateScenario(input);
  const looksLikePath = !input.includes('\n') && /\.(ya?ml|json)$/i.test(input.trim());
  let text = input;
  if (looksLikePath) {
    if (!existsSync(input.trim())) throw new ScenarioError(`scenario file not found: ${input}`);
    text = readFileSync(input.trim(), 'utf8');
  }
  return parseScenarioText(text);
}

/** YAML or JSON text (never a file path: the control API takes scenario text only). */
export function parseScenarioText(text: string): Scenario {
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ScenarioError(`scenario is not valid YAML/JSON: ${(err as Error).message}`);
  }
  return validateScenario(parsed);
}

const CLOCK = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/;
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;

function clockSeconds(value: string): number | undefined {
  const m = CLOCK.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0);
}

/** Seconds from t=0 for a point in time; clock times count from `clockBase` (seconds since midnight). */
export function timeToSeconds(spec: TimeSpec, clockBase: number, key: string): number {
  if (typeof spec === 'number') {
    if (!(spec >= 0)) throw new ScenarioError(`${key}: time must be >= 0`);
    return spec;
  }
  const clock = clockSeconds(spec);
  if (clock !== undefined) {
    if (clock < clockBase) throw new ScenarioError(`${key}: ${spec} is before the scenario clock start`);
    return clock - clockBase;
  }
  return durationToSeconds(spec, key);
}

/** Seconds for a length of time: 90, "90s", "1.5m", "500ms", "1h". */
export function durationToSeconds(spec: TimeSpec, key: string): number {
  if (typeof spec === 'number') {
    if (!(spec >= 0)) throw new ScenarioError(`${key}: must be >= 0`);
    return spec;
  }
  const m = DURATION.exec(spec.trim());
  if (!m) throw new ScenarioError(`${key}: cannot read "${spec}" as a time (use 90, "90s", "5m", "1h" or "09:30")`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
}

/** The earliest clock time in the scenario (the default `clock`), in seconds since midnight. */
export function clockBase(scenario: Scenario): number {
  if (scenario.clock !== undefined) {
    const base = clockSeconds(scenario.clock);
    if (base === undefined) throw new ScenarioError(`clock: "${scenario.clock}" is not HH:MM[:SS]`);
    return base;
  }
  const times: string[] = [];
  for (const m of scenario.meetings ?? []) {
    for (const t of [m.start, m.end, m.lobby?.at]) if (typeof t === 'string') times.push(t);
  }
  for (const step of scenario.timeline ?? []) if (typeof step.at === 'string') times.push(step.at);
  const clocks = times.map(clockSeconds).filter((s): s is number => s !== undefined);
  return clocks.length > 0 ? Math.min(...clocks) : 0;
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireCount(value: unknown, key: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new ScenarioError(`${key}: must be a whole number >= 0`);
}

const ACTIONS = new Set([
  'faults',
  'receiverOutage',
  'restartBridge',
  'lock',
  'endMeeting',
  'leave',
  'record',
  'stream',
  'shareContent',
  'activeSpeaker',
  'dialOut',
  'toLobby',
  'failWrites',
]);

export function validateScenario(value: unknown): Scenario {
  if (!isObject(value)) throw new ScenarioError('a scenario is an object with meetings, timeline and/or load');
  const s = value as Scenario;
  if (s.speed !== undefined && !(typeof s.speed === 'number' && s.speed > 0)) throw new ScenarioError('speed: must be a number > 0');
  if (s.seed !== undefined && !Number.isInteger(s.seed)) throw new ScenarioError('seed: must be an integer');
  const base = clockBase(s);
  if (s.meetings !== undefined && !Array.isArray(s.meetings)) throw new ScenarioError('meetings: must be a list');
  const ids = new Set<string>();
  (s.meetings ?? []).forEach((m, i) => {
    const key = `meetings[${i}]`;
    if (!isObject(m)) throw new ScenarioError(`${key}: must be an object`);
    const id = m.id ?? `meeting-${i + 1}`;
    if (ids.has(id)) throw new ScenarioError(`${key}.id: "${id}" is used twice`);
    ids.add(id);
    if (m.bridges !== undefined && (!Array.isArray(m.bridges) || m.bridges.length === 0)) {
      throw new ScenarioError(`${key}.bridges: must be a non-empty list of bridge names`);
    }
    const start = m.start === undefined ? 0 : timeToSeconds(m.start, base, `${key}.start`);
    if (m.end !== undefined && timeToSeconds(m.end, base, `${key}.end`) < start) throw new ScenarioError(`${key}.end: before start`);
    if (m.leaveOver !== undefined) durationToSeconds(m.leaveOver, `${key}.leaveOver`);
    if (m.participants !== undefined) {
      if (!isObject(m.participants)) throw new ScenarioError(`${key}.participants: must be an object`);
      requireCount(m.participants.count, `${key}.participants.count`);
      if (m.participants.over !== undefined) durationToSeconds(m.participants.over, `${key}.participants.over`);
      if (m.participants.domains !== undefined && (!Array.isArray(m.participants.domains) || m.participants.domains.length === 0)) {
        throw new ScenarioError(`${key}.participants.domains: must be a non-empty list`);
      }
    }
    if (m.lobby !== undefined) {
      if (!isObject(m.lobby)) throw new ScenarioError(`${key}.lobby: must be an object`);
      requireCount(m.lobby.count, `${key}.lobby.count`);
      if (m.lobby.admit !== undefined) {
        requireCount(m.lobby.admit, `${key}.lobby.admit`);
        if (m.lobby.admit > m.lobby.count) throw new ScenarioError(`${key}.lobby.admit: more than lobby.count`);
      }
      if (m.lobby.at !== undefined) timeToSeconds(m.lobby.at, base, `${key}.lobby.at`);
      if (m.lobby.admitAfter !== undefined) durationToSeconds(m.lobby.admitAfter, `${key}.lobby.admitAfter`);
    }
  });
  if (s.timeline !== undefined && !Array.isArray(s.timeline)) throw new ScenarioError('timeline: must be a list');
  (s.timeline ?? []).forEach((step, i) => {
    const key = `timeline[${i}]`;
    if (!isObject(step)) throw new ScenarioError(`${key}: must be an object`);
    if (step.at === undefined) throw new ScenarioError(`${key}.at: missing`);
    timeToSeconds(step.at, base, `${key}.at`);
    if (!ACTIONS.has(step.action)) throw new ScenarioError(`${key}.action: one of ${[...ACTIONS].join(', ')}`);
    if ('meeting' in step && !ids.has(step.meeting)) throw new ScenarioError(`${key}.meeting: no meeting "${step.meeting}"`);
    if (step.action === 'leave' || step.action === 'toLobby') requireCount(step.count, `${key}.count`);
    if (step.action === 'failWrites' && typeof step.failureReason !== 'string') throw new ScenarioError(`${key}.failureReason: missing`);
    if (step.action === 'restartBridge' && typeof step.bridge !== 'string') throw new ScenarioError(`${key}.bridge: missing`);
  });
  if (s.load !== undefined) validateLoad(s.load);
  return s;
}

function validateLoad(load: unknown): LoadSpec {
  if (!isObject(load)) throw new ScenarioError('load: must be an object');
  const l = load as unknown as LoadSpec;
  requireCount(l.meetings, 'load.meetings');
  requireCount(l.participantsPerMeeting, 'load.participantsPerMeeting');
  if (!(typeof l.joinWindowSeconds === 'number' && l.joinWindowSeconds >= 0))
    throw new ScenarioError('load.joinWindowSeconds: must be >= 0');
  if (l.durationSeconds !== undefined && !(l.durationSeconds >= 0)) throw new ScenarioError('load.durationSeconds: must be >= 0');
  if (l.bridgesPerMeeting !== undefined) requireCount(l.bridgesPerMeeting, 'load.bridgesPerMeeting');
  for (const f of ['guestFraction', 'appFraction'] as const) {
    const v = l[f];
    if (v !== undefined && !(v >= 0 && v <= 1)) throw new ScenarioError(`load.${f}: must be within 0..1`);
  }
  return l;
}

/** CLI form: "meetings=200,participants=20,window=60,duration=300,bridgesPerMeeting=2". */
export function parseLoadArgument(text: string): LoadSpec {
  const aliases: Record<string, keyof LoadSpec> = {
    meetings: 'meetings',
    participants: 'participantsPerMeeting',
    participantsPerMeeting: 'participantsPerMeeting',
    window: 'joinWindowSeconds',
    joinWindowSeconds: 'joinWindowSeconds',
    duration: 'durationSeconds',
    durationSeconds: 'durationSeconds',
    bridges: 'bridgesPerMeeting',
    bridgesPerMeeting: 'bridgesPerMeeting',
    guests: 'guestFraction',
    guestFraction: 'guestFraction',
    app: 'appFraction',
    appFraction: 'appFraction',
  };
  const out: Record<string, number | string[]> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [rawKey, rawValue] = part.split('=');
    if (rawKey === 'domains') {
      out.domains = (rawValue ?? '').split('+').filter(Boolean);
      continue;
    }
    const key = aliases[rawKey ?? ''];
    if (!key || rawValue === undefined || Number.isNaN(Number(rawValue))) throw new ScenarioError(`--load: cannot read "${part}"`);
    out[key] = Number(rawValue);
  }
  return validateLoad({ joinWindowSeconds: 60, ...out });
}
