import { ScenarioError } from '../errors.ts';
import type { MeetingHandle, Simulator } from '../simulator.ts';
import { deriveSeed, Random } from '../util/prng.ts';
import { loadScenario } from './parse.ts';
import { buildPlan, joinOptions, type PlanStep } from './plan.ts';
import type { ScenarioInput, ScenarioReport, ScenarioRunOptions, TimelineAction } from './types.ts';

export interface ScenarioRun {
  done: Promise<ScenarioReport>;
  /** Stops before the next step; `done` resolves with stopped = true. */
  stop: () => void;
}

interface MeetingRuntime {
  handle: MeetingHandle;
  /** Legs of this meeting still in the call, in join order. */
  legs: { callLegId: string; participantId: string; lobby: boolean }[];
}

/** Executes plan steps against the simulator; steps run in (time, order) order on one timer. */
class PlanExecutor {
  readonly report: ScenarioReport = { steps: 0, joins: 0, leaves: 0, admitted: 0, errors: [], stopped: false, elapsedMs: 0 };
  readonly #sim: Simulator;
  readonly #random: Random;
  readonly #meetings = new Map<string, MeetingRuntime>();
  /** Meetings to lock as soon as their first call exists. */
  readonly #pendingLock = new Map<string, boolean>();

  constructor(sim: Simulator, seed: number) {
    this.#sim = sim;
    this.#random = new Random(deriveSeed(seed, 'run'));
  }

  run(step: PlanStep): void {
    this.report.steps++;
    try {
      this.#run(step);
    } catch (err) {
      this.report.errors.push(`t=${step.at.toFixed(1)}s ${step.type}: ${(err as Error).message}`);
    }
  }

  #run(step: PlanStep): void {
    const sim = this.#sim;
    switch (step.type) {
      case 'startMeeting': {
        const handle = sim.startCall({ name: step.name, bridges: [], callType: step.callType });
        this.#meetings.set(step.meeting, { handle, legs: [] });
        this.#pendingLock.set(step.meeting, step.locked);
        return;
      }
      case 'join': {
        const m = this.#meeting(step.meeting);
        if (m.handle.ended) return; // everyone left already; a late joiner would start a new meeting in CMS
        const result = sim.join(joinOptions(step, m.handle));
        // A lock needs a call to exist; it is applied with the first join, before anyone else arrives.
        if (this.#pendingLock.get(step.meeting)) {
          sim.updateCall(result.callId, { locked: true });
          this.#pendingLock.delete(step.meeting);
        }
        m.legs.push({ callLegId: result.callLegId, participantId: result.participantId, lobby: step.lobby });
        this.report.joins++;
        return;
      }
      case 'admit': {
        const m = this.#meeting(step.meeting);
        const waiting = m.legs.filter((l) => l.lobby && this.#deactivated(l.callLegId));
        for (const leg of waiting.slice(0, step.count)) {
          sim.admit(leg.participantId);
          this.report.admitted++;
        }
        return;
      }
      case 'leaveOne': {
        const m = this.#meeting(step.meeting);
        this.#prune(m);
        if (m.legs.length === 0) return;
        const index = Math.floor(this.#random.next() * m.legs.length);
        const [leg] = m.legs.splice(index, 1);
        if (leg) {
          sim.leave(leg.callLegId, step.reason);
          this.report.leaves++;
        }
        return;
      }
      case 'action':
        this.#action(step.action);
        return;
    }
  }

  #action(action: TimelineAction): void {
    const sim = this.#sim;
    switch (action.action) {
      case 'faults':
        sim.setFaults(action.faults, { bridge: action.bridge });
        return;
      case 'receiverOutage':
        sim.receiverOutage(action.on, { bridge: action.bridge, receiver: action.receiver });
        return;
      case 'restartBridge':
        sim.restartBridge(action.bridge, { graceful: action.graceful, downMs: (action.downSeconds ?? 0) * 1000 });
        return;
      case 'lock': {
        const m = this.#meeting(action.meeting);
        for (const callId of Object.values(m.handle.calls)) sim.updateCall(callId, { locked: action.locked ?? true });
        return;
      }
      case 'endMeeting': {
        const m = this.#meeting(action.meeting);
        if (!m.handle.ended) sim.endCall(m.handle);
        m.legs = [];
        return;
      }
      case 'leave': {
        const m = this.#meeting(action.meeting);
        this.#prune(m);
        for (let i = 0; i < action.count && m.legs.length > 0; i++) {
          const [leg] = m.legs.splice(Math.floor(this.#random.next() * m.legs.length), 1);
          if (leg) {
            sim.leave(leg.callLegId, action.reason ?? 'remoteTeardown');
            this.report.leaves++;
          }
        }
        return;
      }
      case 'shareContent':
      case 'activeSpeaker':
      case 'dialOut':
      case 'toLobby':
        this.#callControl(action);
        return;
      case 'failWrites': {
        const { action: _, ...spec } = action;
        sim.failWrites(spec);
        return;
      }
      case 'record':
      case 'stream': {
        const m = this.#meeting(action.meeting);
        for (const callId of Object.values(m.handle.calls)) {
          if (action.action === 'record') sim.record(callId, action.on ?? true);
          else sim.stream(callId, action.on ?? true);
        }
        return;
      }
    }
  }

  /** The call-control actions: content sharing, active speaker, dial-out, lobby, failing writes. */
  #callControl(action: Extract<TimelineAction, { action: 'shareContent' | 'activeSpeaker' | 'dialOut' | 'toLobby' }>): void {
    const sim = this.#sim;
    const m = this.#meeting(action.meeting);
    this.#prune(m);
    // In the call: answered and not waiting in the lobby.
    const present = m.legs.filter((l) => {
      const leg = sim.cluster.locateLeg(l.callLegId);
      return leg?.state === 'connected' && !leg.deactivated;
    });
    switch (action.action) {
      case 'shareContent': {
        if (action.on === false) {
          const presenter = sim.cluster.meetings.get(m.handle.callCorrelator)?.presenterLegId;
          if (presenter) sim.shareContent(presenter, false);
          return;
        }
        const first = present[0];
        if (!first) throw new ScenarioError(`meeting "${action.meeting}" has nobody to share content`);
        sim.shareContent(first.callLegId);
        return;
      }
      case 'activeSpeaker': {
        const leg = present[Math.floor(this.#random.next() * present.length)];
        if (leg) sim.setActiveSpeaker(leg.callLegId);
        return;
      }
      case 'dialOut': {
        const call = sim.cluster.locateCall(m.handle.callId(action.bridge));
        if (!call) throw new ScenarioError(`meeting "${action.meeting}" has no call`);
        const leg = sim.cluster.dialOut(call, { remoteParty: action.remoteParty });
        m.legs.push({ callLegId: leg.id, participantId: leg.groupId, lobby: false });
        return;
      }
      case 'toLobby': {
        for (let i = 0; i < action.count && present.length > 0; i++) {
          const [leg] = present.splice(Math.floor(this.#random.next() * present.length), 1);
          if (leg) sim.moveToLobby(leg.participantId);
        }
        return;
      }
    }
  }

  #meeting(id: string): MeetingRuntime {
    const m = this.#meetings.get(id);
    if (!m) throw new ScenarioError(`meeting "${id}" has not started`);
    return m;
  }

  /** Drops legs that ended another way (API DELETE, restart, lobby disconnect). */
  #prune(m: MeetingRuntime): void {
    m.legs = m.legs.filter((l) => this.#sim.cluster.locateLeg(l.callLegId) !== undefined);
  }

  #deactivated(legId: string): boolean {
    return this.#sim.cluster.locateLeg(legId)?.deactivated ?? false;
  }
}

/** Starts a scenario; steps are timed by `speed` (simulated seconds per real second; Infinity = all at once). */
export function startScenario(sim: Simulator, input: ScenarioInput, options: ScenarioRunOptions = {}): ScenarioRun {
  const scenario = loadScenario(input);
  const seed = options.seed ?? scenario.seed ?? sim.seed;
  const speed = options.speed ?? scenario.speed ?? 1;
  const plan = buildPlan(scenario, { bridges: sim.bridges.map((b) => b.name), seed });
  const executor = new PlanExecutor(sim, seed);
  const startedAt = Date.now();
  let timer: NodeJS.Timeout | null = null;
  let next = 0;
  let finish: (report: ScenarioReport) => void = () => undefined;
  const done = new Promise<ScenarioReport>((resolve) => {
    finish = resolve;
  });
  let finished = false;
  const complete = (stopped: boolean) => {
    if (finished) return;
    finished = true;
    if (timer) clearTimeout(timer);
    untrack();
    executor.report.stopped = stopped;
    executor.report.elapsedMs = Date.now() - startedAt;
    finish(executor.report);
  };
  const untrack = sim.trackScenario(() => complete(true));

  const tick = () => {
    timer = null;
    if (finished) return;
    const elapsedSim = speed === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : ((Date.now() - startedAt) / 1000) * speed;
    let ran = 0;
    while (next < plan.length && (plan[next] as PlanStep).at <= elapsedSim) {
      executor.run(plan[next] as PlanStep);
      next++;
      // Yield now and then in instant mode so CDR posts and API requests keep flowing.
      if (++ran >= 200 && speed === Number.POSITIVE_INFINITY) break;
    }
    if (next >= plan.length) {
      complete(false);
      return;
    }
    const wait =
      speed === Number.POSITIVE_INFINITY ? 0 : Math.max(0, ((plan[next] as PlanStep).at / speed) * 1000 - (Date.now() - startedAt));
    timer = setTimeout(tick, wait);
  };
  timer = setTimeout(tick, 0);
  return { done, stop: () => complete(true) };
}
