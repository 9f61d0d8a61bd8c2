/**
 * What every call of the simulator SHOULD show, followed change by change: the simulator's model emits each change
 * synchronously on its bus, right where it generates the CDR for it, so the moment an expected message changes is
 * the generation time of the record that caused it (same process, same clock as the simulator's write log).
 */
import type { Simulator } from '@cms/cms-sim';
import { type CompiledPolicy, desiredMessage, type LegFacts, meetingLevel } from '@cms/policy';

type Cluster = Simulator['cluster'];
type Change = Parameters<Parameters<Cluster['bus']['on']>[0]>[0];
type Meeting = Cluster['meetings'] extends Map<string, infer M> ? M : never;
type SimLeg = ReturnType<Cluster['legsOf']>[number];

/** The message one call instance should show from `at` (ms since epoch) on; '' = none. */
interface Transition {
  text: string;
  at: number;
}

export interface TrackedCall {
  callId: string;
  bridge: string;
  meeting: string;
  transitions: Transition[];
  /** When the call ended in the simulator (no message matters after that), or null. */
  endedAt: number | null;
}

/** The policy's view of a simulated leg: the same facts our services read from its CDRs. */
function legFacts(leg: SimLeg): LegFacts {
  return {
    id: leg.id,
    callId: leg.callId,
    type: leg.type,
    subType: leg.subType,
    guestConnection: leg.guestConnection,
    remoteParty: leg.remoteParty,
    remoteAddress: leg.remoteAddress,
    state: leg.state,
    inIvr: leg.inIvr,
    deactivated: leg.deactivated,
    endedAt: leg.ended ? 'ended' : null,
    isRecorderOrStreamer: leg.kind === 'recorder' || leg.kind === 'streamer',
  };
}

/** The text every live instance of `meeting` should show now (the level is the meeting's, on every bridge). */
export function meetingText(cluster: Cluster, meeting: Meeting, policy: CompiledPolicy): string {
  const { level } = meetingLevel(cluster.meetingLegs(meeting).map(legFacts), policy);
  return desiredMessage(level, policy).messageText;
}

export class ExpectedMessages {
  readonly calls = new Map<string, TrackedCall>();
  readonly #sim: Simulator;
  readonly #policy: CompiledPolicy;
  readonly #dirty = new Map<Meeting, number>();
  readonly #byMeeting = new Map<string, Set<string>>();
  #flushQueued = false;
  #unsubscribe: (() => void) | null = null;

  constructor(sim: Simulator, policy: CompiledPolicy) {
    this.#sim = sim;
    this.#policy = policy;
  }

  start(): void {
    this.#unsubscribe = this.#sim.cluster.bus.on((change) => this.#onChange(change));
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /** The message a call should show now ('' = none); undefined for a call never seen. */
  current(callId: string): string | undefined {
    return this.calls.get(callId)?.transitions.at(-1)?.text ?? (this.calls.has(callId) ? '' : undefined);
  }

  #onChange(change: Change): void {
    const meeting =
      'meeting' in change ? change.meeting : 'leg' in change ? change.leg.meeting : 'call' in change ? change.call.meeting : null;
    if (!meeting) return;
    // One driver action (a join: callLegStart, callStart, callLegUpdate) emits several changes in one go: evaluate
    // the meeting once after it, stamped with the time of its first change.
    if (!this.#dirty.has(meeting)) this.#dirty.set(meeting, Date.now());
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    const cluster = this.#sim.cluster;
    for (const [meeting, at] of this.#dirty) {
      const text = meetingText(cluster, meeting, this.#policy);
      let ids = this.#byMeeting.get(meeting.callCorrelator);
      if (!ids) {
        ids = new Set();
        this.#byMeeting.set(meeting.callCorrelator, ids);
      }
      for (const [bridge, call] of meeting.instances) {
        let tracked = this.calls.get(call.id);
        if (!tracked) {
          tracked = { callId: call.id, bridge, meeting: meeting.callCorrelator, transitions: [], endedAt: null };
          this.calls.set(call.id, tracked);
          ids.add(call.id);
        }
        // A new call shows nothing, so a first expectation of '' is no change.
        const previous = tracked.transitions.at(-1)?.text ?? '';
        if (text !== previous) tracked.transitions.push({ text, at });
      }
      for (const id of ids) {
        const tracked = this.calls.get(id);
        if (tracked && tracked.endedAt === null && meeting.instances.get(tracked.bridge)?.id !== id) tracked.endedAt = at;
      }
    }
    this.#dirty.clear();
  }
}
