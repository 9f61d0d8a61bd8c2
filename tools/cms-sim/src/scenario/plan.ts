import { ScenarioError } from '../errors.ts';
import type { JoinOptions, MeetingHandle } from '../simulator.ts';
import { deriveSeed, Random } from '../util/prng.ts';
import { clockBase, durationToSeconds, timeToSeconds } from './parse.ts';
import type { LoadSpec, MeetingScenario, Scenario, TimelineAction } from './types.ts';

/** One timed step of a plan; `at` is simulated seconds from the start. */
export type PlanStep = { at: number; seq: number } & (
  | { type: 'startMeeting'; meeting: string; name: string; locked: boolean; callType: 'coSpace' | 'adHoc' }
  | {
      type: 'join';
      meeting: string;
      bridge: string;
      kind: 'sip' | 'app' | 'guest';
      remoteParty: string;
      displayName: string;
      needsActivation: boolean;
      viaIvr: boolean;
      lobby: boolean;
    }
  | { type: 'admit'; meeting: string; count: number }
  /** One participant leaves, picked with the plan's random stream at run time. */
  | { type: 'leaveOne'; meeting: string; reason: string }
  | { type: 'action'; action: TimelineAction }
);

export type JoinStep = Extract<PlanStep, { type: 'join' }>;

/** What a planned join asks of the simulator: the scenario runner and the benchmark's load driver both run plans. */
export function joinOptions(step: JoinStep, meeting: MeetingHandle): JoinOptions {
  const { bridge, kind, remoteParty, displayName, needsActivation, viaIvr } = step;
  return { meeting, bridge, kind, remoteParty, displayName, needsActivation, viaIvr };
}

type StepBody = PlanStep extends infer S ? (S extends PlanStep ? Omit<S, 'at' | 'seq'> : never) : never;

const FIRST = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'niaj', 'olivia', 'peggy'];
const LAST = ['smith', 'jones', 'lee', 'brown', 'garcia', 'martin', 'white', 'clark', 'lopez', 'young'];
const DEFAULT_DOMAINS = ['example.com', 'partner.example.org', 'visitor.example.net'];

class PlanBuilder {
  readonly steps: PlanStep[] = [];
  readonly random: Random;
  #seq = 0;
  #people = 0;

  constructor(seed: number) {
    this.random = new Random(deriveSeed(seed, 'plan'));
  }

  add(at: number, body: StepBody): void {
    this.steps.push({ ...body, at, seq: this.#seq++ } as PlanStep);
  }

  person(domains: readonly string[], kind: 'sip' | 'app' | 'guest'): { remoteParty: string; displayName: string } {
    this.#people++;
    const first = this.random.pick(FIRST);
    const last = this.random.pick(LAST);
    const displayName = `${cap(first)} ${cap(last)}`;
    if (kind === 'guest') return { remoteParty: `guest.${first}.${this.#people}`, displayName: `${displayName} (guest)` };
    return { remoteParty: `${first}.${last}${this.#people}@${this.random.pick(domains)}`, displayName };
  }

  sorted(): PlanStep[] {
    return [...this.steps].sort((a, b) => a.at - b.at || a.seq - b.seq);
  }
}

function cap(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** Turns a scenario into a deterministic list of timed steps (same seed → same steps). */
export function buildPlan(scenario: Scenario, p: { bridges: readonly string[]; seed: number }): PlanStep[] {
  const builder = new PlanBuilder(p.seed);
  const base = clockBase(scenario);
  for (const [i, m] of (scenario.meetings ?? []).entries()) planMeeting(builder, m, i, base, p.bridges);
  for (const [i, step] of (scenario.timeline ?? []).entries()) {
    const { at, ...action } = step;
    builder.add(timeToSeconds(at, base, `timeline[${i}].at`), { type: 'action', action: action as TimelineAction });
  }
  if (scenario.load) planLoad(builder, scenario.load, p.bridges);
  return builder.sorted();
}

function planMeeting(b: PlanBuilder, m: MeetingScenario, index: number, base: number, allBridges: readonly string[]): void {
  const key = `meetings[${index}]`;
  const id = m.id ?? `meeting-${index + 1}`;
  const bridges = m.bridges ?? [allBridges[0] as string];
  for (const bridge of bridges) if (!allBridges.includes(bridge)) throw new ScenarioError(`${key}.bridges: no bridge "${bridge}"`);
  const start = m.start === undefined ? 0 : timeToSeconds(m.start, base, `${key}.start`);
  b.add(start, {
    type: 'startMeeting',
    meeting: id,
    name: m.name ?? `Meeting ${index + 1}`,
    locked: m.locked ?? m.lobby !== undefined,
    callType: m.callType ?? 'coSpace',
  });
  let joins = 0;
  const participants = m.participants;
  if (participants) {
    const over = durationToSeconds(participants.over ?? 0, `${key}.participants.over`);
    const domains = participants.domains ?? DEFAULT_DOMAINS;
    const sipWeight = participants.kinds?.sip ?? (participants.kinds ? 0 : 1);
    const appWeight = participants.kinds?.app ?? 0;
    const times = Array.from({ length: participants.count }, () => start + b.random.next() * over).sort((x, y) => x - y);
    times.forEach((at, n) => {
      const kind = b.random.next() * (sipWeight + appWeight) < sipWeight ? 'sip' : 'app';
      b.add(at, {
        type: 'join',
        meeting: id,
        bridge: bridges[n % bridges.length] as string,
        kind,
        ...b.person(domains, kind),
        needsActivation: false,
        viaIvr: kind === 'sip' && b.random.chance(participants.viaIvr ?? 0),
        lobby: false,
      });
    });
    joins += participants.count;
  }
  const lobby = m.lobby;
  if (lobby) {
    const at = lobby.at === undefined ? start : timeToSeconds(lobby.at, base, `${key}.lobby.at`);
    for (let n = 0; n < lobby.count; n++) {
      b.add(at + n, {
        type: 'join',
        meeting: id,
        bridge: bridges[n % bridges.length] as string,
        kind: 'guest',
        ...b.person(lobby.domains ?? DEFAULT_DOMAINS, 'guest'),
        needsActivation: true,
        viaIvr: false,
        lobby: true,
      });
    }
    if (lobby.admit) {
      const admitAt = at + lobby.count + durationToSeconds(lobby.admitAfter ?? 30, `${key}.lobby.admitAfter`);
      b.add(admitAt, { type: 'admit', meeting: id, count: lobby.admit });
    }
    joins += lobby.count;
  }
  if (m.end !== undefined) {
    const end = timeToSeconds(m.end, base, `${key}.end`);
    const leaveOver = durationToSeconds(m.leaveOver ?? 0, `${key}.leaveOver`);
    for (let n = 0; n < joins; n++) {
      b.add(Math.max(start, end - leaveOver + b.random.next() * leaveOver), { type: 'leaveOne', meeting: id, reason: 'remoteTeardown' });
    }
  }
}

function planLoad(b: PlanBuilder, load: LoadSpec, allBridges: readonly string[]): void {
  const perMeeting = Math.max(1, Math.min(load.bridgesPerMeeting ?? 2, allBridges.length));
  const duration = load.durationSeconds ?? 300;
  const domains = load.domains ?? DEFAULT_DOMAINS;
  const guestFraction = load.guestFraction ?? 0.1;
  const appFraction = load.appFraction ?? 0.2;
  for (let i = 0; i < load.meetings; i++) {
    const id = `load-${i + 1}`;
    const bridges = Array.from({ length: perMeeting }, (_, k) => allBridges[(i + k) % allBridges.length] as string);
    b.add(0, { type: 'startMeeting', meeting: id, name: `Load meeting ${i + 1}`, locked: false, callType: 'coSpace' });
    for (let n = 0; n < load.participantsPerMeeting; n++) {
      const at = b.random.next() * load.joinWindowSeconds;
      const roll = b.random.next();
      const kind = roll < guestFraction ? 'guest' : roll < guestFraction + appFraction ? 'app' : 'sip';
      b.add(at, {
        type: 'join',
        meeting: id,
        bridge: b.random.pick(bridges),
        kind,
        ...b.person(domains, kind),
        needsActivation: kind === 'guest',
        viaIvr: false,
        lobby: false,
      });
      b.add(at + duration * (0.9 + 0.2 * b.random.next()), { type: 'leaveOne', meeting: id, reason: 'remoteTeardown' });
    }
  }
}
