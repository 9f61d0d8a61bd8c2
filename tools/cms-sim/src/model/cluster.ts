import { randomUUID } from 'node:crypto';
import { CmsFailure, callDoesNotExist, callLegDoesNotExist, participantDoesNotExist, SimulatorError } from '../errors.ts';
import type { DeactivationMode } from '../options.ts';
import { type SimClock, seconds } from '../util/clock.ts';
import { deriveSeed, Random } from '../util/prng.ts';
import { BridgeState } from './bridge.ts';
import { type CallElement, ChangeBus, type LegCdrUpdate, type LegQuality, type RosterElement } from './changes.ts';
import { isActivator, joinsDeactivated, lobbyActions } from './lobby.ts';
import { inventQuality, type QualityOverride } from './quality.ts';
import {
  type Call,
  type CallLeg,
  type CallType,
  type Direction,
  isPersonLeg,
  type LegConfiguration,
  type LegKind,
  type Meeting,
  type Participant,
} from './types.ts';

export interface MeetingSpec {
  name?: string;
  callType?: CallType;
  /** coSpace GUID; default a new one for coSpace calls, none for ad hoc calls. */
  coSpace?: string | null;
  callCorrelator?: string;
  tenant?: string | null;
  ownerName?: string;
  cdrTag?: string | null;
}

export interface JoinSpec {
  meeting: Meeting;
  bridge: string;
  kind?: 'sip' | 'app' | 'guest';
  direction?: Direction;
  remoteParty?: string;
  displayName?: string;
  remoteAddress?: string;
  /** Default: true for guests, false otherwise. */
  needsActivation?: boolean;
  /** The leg passes through the IVR first (a callLegUpdate with `<ivr/>`). */
  viaIvr?: boolean;
  /** Bypass the lobby (POST participants deactivated=false). */
  admitted?: boolean;
  importance?: number | null;
}

export interface CallUpdate {
  messageText?: string;
  messagePosition?: string;
  messageDuration?: number | 'permanent';
  locked?: boolean;
  recording?: boolean;
  streaming?: boolean;
  allowAllMuteSelf?: boolean;
  joinAudioMuteOverride?: boolean;
}

export interface LegUpdate {
  chosenLayout?: string;
  needsActivation?: boolean;
  rxAudioMute?: boolean;
  txAudioMute?: boolean;
  rxVideoMute?: boolean;
  txVideoMute?: boolean;
  callLegProfile?: string;
  dtmfSequence?: string;
  /** false admits a lobby leg; true sends it (back) to the lobby. */
  deactivated?: boolean;
}

export interface ParticipantUpdate extends LegUpdate {
  importance?: number | null;
  nameLabelOverride?: string;
}

export interface RestartSpec {
  /** End every call with CDRs first (an orderly restart). Default false: calls vanish as in a crash. */
  graceful?: boolean;
}

/** A dial-out rings this long (simulated ms) by default before it connects. */
const DEFAULT_DIAL_OUT_ANSWER_MS = 1000;

const MEETING_WORDS = ['Board', 'Sales', 'Dev', 'Ops', 'Design', 'Support', 'Finance', 'Legal', 'Weekly', 'Project'];

/**
 * The cluster's call model. Every operation is synchronous and emits its changes on `bus` in the order CMS
 * would report them, so CDRs, events and API state never disagree.
 */
export class Cluster {
  readonly bridges = new Map<string, BridgeState>();
  /** callCorrelator → meeting, while it has not ended. */
  readonly meetings = new Map<string, Meeting>();
  readonly bus = new ChangeBus();
  readonly clock: SimClock;
  readonly deactivationMode: DeactivationMode;
  /** Simulated ms a dial-out rings before the far end answers; null = only when told (answer()). */
  dialOutAnswerMs: number | null;
  readonly #ids: Random;
  readonly #random: Random;
  readonly #timers = new Set<NodeJS.Timeout>();
  #meetingCounter = 0;

  constructor(options: { seed: number; clock: SimClock; deactivationMode?: DeactivationMode; dialOutAnswerMs?: number | null }) {
    this.clock = options.clock;
    this.deactivationMode = options.deactivationMode ?? 'deactivate';
    this.dialOutAnswerMs = options.dialOutAnswerMs === undefined ? DEFAULT_DIAL_OUT_ANSWER_MS : options.dialOutAnswerMs;
    this.#ids = new Random(deriveSeed(options.seed, 'ids'));
    this.#random = new Random(deriveSeed(options.seed, 'content'));
  }

  newId(): string {
    return this.#ids.uuid();
  }

  get random(): Random {
    return this.#random;
  }

  addBridge(name: string, callBridgeId?: string): BridgeState {
    if (this.bridges.has(name)) throw new SimulatorError(`duplicate bridge name ${name}`);
    const bridge = new BridgeState(name, callBridgeId ?? this.newId(), randomUUID());
    this.bridges.set(name, bridge);
    return bridge;
  }

  bridge(name: string): BridgeState {
    const bridge = this.bridges.get(name);
    if (!bridge) throw new SimulatorError(`unknown bridge ${name} (have ${[...this.bridges.keys()].join(', ')})`);
    return bridge;
  }

  // ---- lookups (API view of one bridge) ----

  findCall(bridge: string, id: string): Call {
    const call = this.bridge(bridge).calls.get(id);
    if (!call) throw callDoesNotExist();
    return call;
  }

  findLeg(bridge: string, id: string): CallLeg {
    const leg = this.bridge(bridge).legs.get(id);
    if (!leg) throw callLegDoesNotExist();
    return leg;
  }

  /** Participants a bridge reports: its own and, for calls it hosts, those on other bridges. */
  visibleParticipants(bridge: string): Participant[] {
    const out: Participant[] = [];
    for (const call of this.bridge(bridge).calls.values()) out.push(...call.meeting.participants.values());
    return out;
  }

  findParticipant(bridge: string, id: string): Participant {
    const found = this.visibleParticipants(bridge).find((p) => p.id === id);
    if (!found) throw participantDoesNotExist();
    return found;
  }

  /** Finds a call id on any bridge (driver convenience). */
  locateCall(callId: string): Call | undefined {
    for (const bridge of this.bridges.values()) {
      const call = bridge.calls.get(callId);
      if (call) return call;
    }
    return undefined;
  }

  locateLeg(legId: string): CallLeg | undefined {
    for (const bridge of this.bridges.values()) {
      const leg = bridge.legs.get(legId);
      if (leg) return leg;
    }
    return undefined;
  }

  legsOf(call: Call): CallLeg[] {
    const bridge = this.bridge(call.bridge);
    const legs: CallLeg[] = [];
    for (const id of call.legIds) {
      const leg = bridge.legs.get(id);
      if (leg) legs.push(leg);
    }
    return legs;
  }

  meetingLegs(meeting: Meeting): CallLeg[] {
    return [...meeting.instances.values()].flatMap((call) => this.legsOf(call));
  }

  // ---- meetings and calls ----

  createMeeting(spec: MeetingSpec = {}): Meeting {
    this.#meetingCounter++;
    const callType = spec.callType ?? 'coSpace';
    const meeting: Meeting = {
      callCorrelator: spec.callCorrelator ?? this.newId(),
      name: spec.name ?? `${this.#random.pick(MEETING_WORDS)} meeting ${this.#meetingCounter}`,
      callType,
      coSpace: spec.coSpace === undefined ? (callType === 'coSpace' ? this.newId() : null) : spec.coSpace,
      tenant: spec.tenant ?? null,
      ownerName: spec.ownerName ?? '',
      cdrTag: spec.cdrTag ?? null,
      instances: new Map(),
      participants: new Map(),
      locked: false,
      links: [],
      ended: false,
      presenterLegId: null,
      activeSpeakerLegId: null,
    };
    if (this.meetings.has(meeting.callCorrelator)) throw new SimulatorError(`callCorrelator ${meeting.callCorrelator} is in use`);
    this.meetings.set(meeting.callCorrelator, meeting);
    return meeting;
  }

  /** The meeting's call on `bridgeName`, created (with callStart and distribution links) when missing. */
  ensureInstance(meeting: Meeting, bridgeName: string): Call {
    this.#assertOpen(meeting);
    const existing = meeting.instances.get(bridgeName);
    if (existing) return existing;
    const bridge = this.bridge(bridgeName);
    const call: Call = {
      id: this.newId(),
      bridge: bridgeName,
      meeting,
      startedAt: this.clock.now(),
      legIds: new Set(),
      legsCompleted: 0,
      maxActiveLegs: 0,
      messageText: '',
      messagePosition: 'middle',
      messageDuration: 0,
      messageSetAt: this.clock.now(),
      recording: null,
      streaming: null,
      allowAllMuteSelf: false,
      joinAudioMuteOverride: false,
    };
    bridge.calls.set(call.id, call);
    meeting.instances.set(bridgeName, call);
    this.bus.emit({ kind: 'callStarted', bridge: bridgeName, call });
    this.#relink(meeting);
    this.#touchMeeting(meeting, ['distributedInstances', 'participants']);
    return call;
  }

  /** A person joins: callLegStart (no call yet for incoming legs), callStart if the bridge had no call, then callLegUpdate. */
  join(spec: JoinSpec): CallLeg {
    const { meeting } = spec;
    this.#assertOpen(meeting);
    const bridge = this.bridge(spec.bridge);
    const direction = spec.direction ?? 'incoming';
    // Outgoing legs are placed from a call, so the call exists (and is named in callLegStart) before the leg.
    let call = direction === 'outgoing' ? this.ensureInstance(meeting, bridge.name) : meeting.instances.get(bridge.name);
    const { leg, participant } = this.#personLeg(spec, direction, direction === 'outgoing' && call ? call.id : null);
    bridge.legs.set(leg.id, leg);
    bridge.noteLegCount();
    this.bus.emit({ kind: 'legStarted', bridge: bridge.name, leg });
    call ??= this.ensureInstance(meeting, bridge.name);
    if (spec.viaIvr) {
      leg.inIvr = true;
      leg.state = 'connected';
      this.bus.emit({ kind: 'legUpdated', bridge: bridge.name, leg, cdr: { state: 'connected', ivr: true } });
      leg.inIvr = false;
    }
    this.#enterCall(leg, call, participant);
    return leg;
  }

  /**
   * Dial-out from a call (POST calls/<id>/callLegs or participants): an outgoing leg in the call that rings
   * (callLegStart naming the call; the roster shows it `ringing`) and connects when the far end answers,
   * after `dialOutAnswerMs` or when answer() is called. A ringing leg that ends (DELETE, leave with
   * remoteBusy, ...) never connects.
   */
  dialOut(call: Call, spec: Omit<JoinSpec, 'meeting' | 'bridge' | 'direction'>, configuration: LegUpdate = {}): CallLeg {
    const meeting = call.meeting;
    this.#assertOpen(meeting);
    const bridge = this.bridge(call.bridge);
    const { leg, participant } = this.#personLeg({ ...spec, meeting, bridge: call.bridge }, 'outgoing', call.id);
    // Parameters of the POST are the leg's configuration from the start (no separate change).
    const config = leg.configuration;
    for (const key of ['rxAudioMute', 'txAudioMute', 'rxVideoMute', 'txVideoMute'] as const)
      config[key] = configuration[key] ?? config[key];
    config.chosenLayout = configuration.chosenLayout ?? config.chosenLayout;
    config.callLegProfile = configuration.callLegProfile ?? config.callLegProfile;
    bridge.legs.set(leg.id, leg);
    bridge.noteLegCount();
    call.legIds.add(leg.id);
    call.maxActiveLegs = Math.max(call.maxActiveLegs, call.legIds.size);
    participant.legIds.push(leg.id);
    meeting.participants.set(participant.id, participant);
    bridge.participants.set(participant.id, participant);
    this.bus.emit({ kind: 'legStarted', bridge: bridge.name, leg });
    this.bus.emit({ kind: 'participantAdded', meeting, participant });
    this.#touchMeeting(meeting, ['participants']);
    if (this.dialOutAnswerMs !== null) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.answer(leg);
      }, this.clock.toReal(this.dialOutAnswerMs));
      this.#timers.add(timer);
    }
    return leg;
  }

  /** The far end answers a ringing dial-out: callLegUpdate state=connected (deactivated if it must wait in the lobby). */
  answer(leg: CallLeg): void {
    if (leg.ended || leg.state !== 'ringing' || leg.callId === null) return;
    const call = this.bridge(leg.bridge).calls.get(leg.callId);
    if (!call) return;
    const meeting = call.meeting;
    const activatorPresent = this.meetingLegs(meeting).some(isActivator);
    leg.state = 'connected';
    if (call.joinAudioMuteOverride) leg.configuration.rxAudioMute = true;
    // Sent to the lobby while it rang: it answers into the lobby.
    leg.deactivated = leg.heldInLobby || joinsDeactivated(leg, meeting.locked, activatorPresent);
    if (!leg.deactivated) leg.activatedSince = this.clock.now();
    const cdr: LegCdrUpdate = { state: 'connected', call: true };
    if (leg.deactivated) cdr.deactivated = true;
    this.bus.emit({ kind: 'legUpdated', bridge: leg.bridge, leg, cdr });
    const elements: RosterElement[] = ['state'];
    if (call.joinAudioMuteOverride) elements.push('audioMuted');
    this.#participantChanged(leg, elements);
    this.#applyLobby(meeting);
  }

  /** Stops pending timers (dial-outs waiting to be answered). */
  dispose(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  /** A leg leaves: callLegEnd with `reason`; the bridge's call ends when its last person leaves. */
  leave(leg: CallLeg, reason = 'remoteTeardown', quality?: QualityOverride): void {
    if (leg.ended) return;
    const call = leg.callId ? this.bridge(leg.bridge).calls.get(leg.callId) : undefined;
    this.#endLeg(leg, reason, quality);
    if (!call || !isPersonLeg(leg)) return;
    this.#applyLobby(call.meeting);
    this.#touchMeeting(call.meeting, ['participants']);
    this.#endIfEmpty(call);
  }

  /** Ends one bridge's call (DELETE /calls/<id>): its legs end with `legReason`, links drop on the other bridges. */
  endCall(call: Call, legReason = 'callEnded'): void {
    if (!call.meeting.instances.has(call.bridge)) return;
    const meeting = call.meeting;
    for (const leg of this.legsOf(call)) {
      if (leg.kind === 'distributionLink') this.#endLink(leg, legReason);
      else this.#endLeg(leg, legReason);
    }
    if (call.recording) this.#stopOutput(call, 'recording');
    if (call.streaming) this.#stopOutput(call, 'streaming');
    const bridge = this.bridge(call.bridge);
    this.bus.emit({ kind: 'callEnded', bridge: bridge.name, call, durationSeconds: seconds(this.clock.now() - call.startedAt) });
    bridge.calls.delete(call.id);
    meeting.instances.delete(call.bridge);
    this.#afterInstanceGone(meeting);
  }

  /** Ends every call of the meeting on every bridge. */
  endMeeting(meeting: Meeting, legReason = 'callEnded'): void {
    for (const call of [...meeting.instances.values()]) this.endCall(call, legReason);
    meeting.ended = true;
    this.meetings.delete(meeting.callCorrelator);
  }

  updateCall(call: Call, update: CallUpdate): void {
    const meeting = call.meeting;
    const now = this.clock.now();
    if (update.messageText !== undefined || update.messageDuration !== undefined || update.messagePosition !== undefined) {
      if (update.messageText !== undefined) call.messageText = update.messageText;
      if (update.messagePosition !== undefined) call.messagePosition = update.messagePosition;
      if (update.messageDuration !== undefined) call.messageDuration = update.messageDuration;
      call.messageSetAt = now;
    }
    if (update.allowAllMuteSelf !== undefined) call.allowAllMuteSelf = update.allowAllMuteSelf;
    if (update.joinAudioMuteOverride !== undefined && update.joinAudioMuteOverride !== call.joinAudioMuteOverride) {
      call.joinAudioMuteOverride = update.joinAudioMuteOverride;
      this.bus.emit({ kind: 'callUpdated', bridge: call.bridge, call, elements: ['joinAudioMuteOverride'] });
    }
    if (update.locked !== undefined) this.lockMeeting(meeting, update.locked);
    if (update.recording !== undefined) this.#setOutput(call, 'recording', update.recording);
    if (update.streaming !== undefined) this.#setOutput(call, 'streaming', update.streaming);
  }

  /** The lock belongs to the meeting: every bridge's call reports it and the lobby applies meeting-wide. */
  lockMeeting(meeting: Meeting, locked: boolean): void {
    if (locked === meeting.locked) return;
    meeting.locked = locked;
    this.#touchMeeting(meeting, ['lockState']);
    this.#applyLobby(meeting);
  }

  updateLeg(leg: CallLeg, update: LegUpdate): void {
    const elements = this.#updateLeg(leg, update);
    if (elements.length > 0) this.#participantChanged(leg, elements);
    this.#applyLobby(leg.meeting);
  }

  updateParticipant(participant: Participant, update: ParticipantUpdate): void {
    const elements = new Set<RosterElement>();
    if (update.importance !== undefined && update.importance !== participant.importance) {
      participant.importance = update.importance;
      elements.add('importance');
    }
    if (update.nameLabelOverride !== undefined && update.nameLabelOverride !== participant.nameLabelOverride) {
      participant.nameLabelOverride = update.nameLabelOverride;
      elements.add('name');
    }
    const bridge = this.bridge(participant.bridge);
    for (const legId of participant.legIds) {
      const leg = bridge.legs.get(legId);
      if (leg) for (const e of this.#updateLeg(leg, update)) elements.add(e);
    }
    if (elements.size > 0 && participant.meeting.participants.has(participant.id)) {
      this.bus.emit({ kind: 'participantUpdated', meeting: participant.meeting, participant, elements: [...elements] });
    }
    this.#applyLobby(participant.meeting);
  }

  /**
   * Content sharing (presentation) starts or stops for a leg. One presenter per meeting: a new one takes over.
   * Shows in GET /calls/<id> presenterCallLeg (on the presenter's bridge), the roster's `presenter` and the
   * callLegEnd presentationContributor share.
   */
  shareContent(leg: CallLeg, on: boolean): void {
    const meeting = leg.meeting;
    if (on) {
      if (leg.ended || leg.state !== 'connected' || leg.deactivated || !isPersonLeg(leg))
        throw new SimulatorError(`call leg ${leg.id} cannot share content (not connected, in the lobby or not a person)`);
      if (meeting.presenterLegId === leg.id) return;
      const previous = this.#presenterLeg(meeting);
      if (previous) this.#stopPresenting(previous);
      meeting.presenterLegId = leg.id;
      leg.presentingSince = this.clock.now();
      this.#participantChanged(leg, ['presenter']);
    } else if (meeting.presenterLegId === leg.id) {
      this.#stopPresenting(leg);
    }
  }

  /** The leg heard as active speaker (null: nobody). Shows as the roster's `activeSpeaker`. */
  setActiveSpeaker(meeting: Meeting, leg: CallLeg | null): void {
    if (leg && (leg.ended || leg.meeting !== meeting)) throw new SimulatorError(`call leg ${leg.id} is not in this meeting`);
    const id = leg?.id ?? null;
    if (meeting.activeSpeakerLegId === id) return;
    const previous = meeting.activeSpeakerLegId ? this.locateLeg(meeting.activeSpeakerLegId) : undefined;
    meeting.activeSpeakerLegId = id;
    if (previous) this.#participantChanged(previous, ['activeSpeaker']);
    if (leg) this.#participantChanged(leg, ['activeSpeaker']);
  }

  /** Admits a participant waiting in the lobby. */
  admit(participant: Participant): void {
    this.updateParticipant(participant, { deactivated: false });
  }

  /** A crash (default) loses the bridge's calls without CDRs; a graceful restart ends them first. Either way: new session. */
  restart(bridgeName: string, spec: RestartSpec = {}): BridgeState {
    const bridge = this.bridge(bridgeName);
    if (spec.graceful) {
      for (const call of [...bridge.calls.values()]) this.endCall(call);
    } else {
      for (const call of [...bridge.calls.values()]) this.#dropCall(call);
    }
    bridge.legs.clear();
    bridge.participants.clear();
    bridge.session = randomUUID();
    bridge.startedAt = Date.now();
    bridge.restarts++;
    bridge.legsCompleted = 0;
    bridge.legsMaxActive = 0;
    this.bus.emit({ kind: 'bridgeRestarted', bridge: bridgeName, session: bridge.session });
    return bridge;
  }

  // ---- internals ----

  #assertOpen(meeting: Meeting): void {
    if (meeting.ended) throw new CmsFailure(404, 'callDoesNotExist');
  }

  /** A new person leg and its participant (not yet in any map). */
  #personLeg(spec: JoinSpec, direction: Direction, callId: string | null): { leg: CallLeg; participant: Participant } {
    const kind = spec.kind ?? 'sip';
    const remoteParty = spec.remoteParty ?? this.#inventRemoteParty(kind);
    const legId = this.newId();
    const leg = this.#newLeg(spec.bridge, spec.meeting, {
      id: legId,
      kind,
      type: kind === 'sip' ? 'sip' : 'acano',
      subType: kind === 'sip' ? null : 'webApp',
      direction,
      remoteParty,
      displayName: spec.displayName ?? displayNameOf(remoteParty),
      remoteAddress: spec.remoteAddress ?? domainOf(remoteParty),
      groupId: kind === 'sip' ? this.newId() : legId,
      callId,
      needsActivation: spec.needsActivation ?? kind === 'guest',
    });
    leg.admitted = spec.admitted ?? false;
    const participant: Participant = {
      id: leg.groupId,
      meeting: spec.meeting,
      bridge: spec.bridge,
      name: leg.displayName,
      uri: remoteParty,
      direction,
      kind,
      legIds: [],
      importance: spec.importance ?? null,
      nameLabelOverride: '',
      dtmfSequences: [],
    };
    return { leg, participant };
  }

  /** Applies a leg write; returns the roster elements it changed. Lobby consequences are left to the caller. */
  #updateLeg(leg: CallLeg, update: LegUpdate): RosterElement[] {
    const config = leg.configuration;
    const elements: RosterElement[] = [];
    let configChanged = false;
    // rx = what the bridge takes from this leg: the roster's audioMuted/videoMuted. tx mutes have no roster element.
    const rosterOf = { rxAudioMute: 'audioMuted', rxVideoMute: 'videoMuted', txAudioMute: null, txVideoMute: null } as const;
    for (const key of ['rxAudioMute', 'txAudioMute', 'rxVideoMute', 'txVideoMute'] as const) {
      const value = update[key];
      if (value !== undefined && value !== config[key]) {
        config[key] = value;
        configChanged = true;
        const element = rosterOf[key];
        if (element) elements.push(element);
      }
    }
    if (update.chosenLayout !== undefined && update.chosenLayout !== config.chosenLayout) {
      config.chosenLayout = update.chosenLayout;
      configChanged = true;
      elements.push('layout');
    }
    if (update.callLegProfile !== undefined && update.callLegProfile !== config.callLegProfile) {
      config.callLegProfile = update.callLegProfile;
      configChanged = true;
    }
    if (update.dtmfSequence) this.#participantOf(leg)?.dtmfSequences.push(update.dtmfSequence);
    if (update.needsActivation !== undefined && update.needsActivation !== config.needsActivation) {
      config.needsActivation = update.needsActivation;
      configChanged = true;
      elements.push('canMoveToLobby');
    }
    if (update.deactivated === false && (leg.deactivated || leg.heldInLobby)) {
      // Admitted from the lobby. Someone not waiting there is left as they are (200, nothing changes).
      leg.admitted = true;
      leg.heldInLobby = false;
    } else if (update.deactivated === true && !leg.heldInLobby) {
      leg.admitted = false;
      leg.heldInLobby = true;
    }
    if (configChanged) this.bus.emit({ kind: 'legUpdated', bridge: leg.bridge, leg, cdr: null });
    return elements;
  }

  #presenterLeg(meeting: Meeting): CallLeg | undefined {
    return meeting.presenterLegId ? this.locateLeg(meeting.presenterLegId) : undefined;
  }

  #stopPresenting(leg: CallLeg): void {
    if (leg.presentingSince !== null) leg.presentedMs += this.clock.now() - leg.presentingSince;
    leg.presentingSince = null;
    if (leg.meeting.presenterLegId === leg.id) leg.meeting.presenterLegId = null;
    if (!leg.ended) this.#participantChanged(leg, ['presenter']);
  }

  #newLeg(
    bridge: string,
    meeting: Meeting,
    p: {
      id: string;
      kind: LegKind;
      type: 'sip' | 'acano';
      subType: string | null;
      direction: Direction;
      remoteParty: string;
      displayName: string;
      remoteAddress: string;
      groupId: string;
      callId: string | null;
      needsActivation: boolean;
    },
  ): CallLeg {
    const config: LegConfiguration = {
      chosenLayout: 'automatic',
      needsActivation: p.needsActivation,
      rxAudioMute: false,
      txAudioMute: false,
      rxVideoMute: false,
      txVideoMute: false,
      callLegProfile: '',
    };
    return {
      id: p.id,
      bridge,
      kind: p.kind,
      type: p.type,
      subType: p.subType,
      direction: p.direction,
      displayName: p.displayName,
      remoteParty: p.remoteParty,
      remoteAddress: p.remoteAddress,
      localAddress: `${slug(meeting.name)}@${this.bridge(bridge).sipDomain}`,
      sipCallId: p.type === 'sip' ? this.newId() : null,
      groupId: p.groupId,
      meeting,
      callId: p.callId,
      inIvr: false,
      state: p.direction === 'outgoing' ? 'ringing' : 'initial',
      configuration: config,
      deactivated: false,
      admitted: false,
      heldInLobby: false,
      guestConnection: p.kind === 'guest',
      startedAt: this.clock.now(),
      activatedMs: 0,
      activatedSince: null,
      ended: false,
      presentedMs: 0,
      presentingSince: null,
      peerLegId: null,
    };
  }

  #enterCall(leg: CallLeg, call: Call, participant: Participant): void {
    const meeting = call.meeting;
    const activatorPresent = this.meetingLegs(meeting).some(isActivator);
    leg.callId = call.id;
    leg.state = 'connected';
    if (call.joinAudioMuteOverride) leg.configuration.rxAudioMute = true;
    call.legIds.add(leg.id);
    call.maxActiveLegs = Math.max(call.maxActiveLegs, call.legIds.size);
    leg.deactivated = joinsDeactivated(leg, meeting.locked, activatorPresent);
    if (!leg.deactivated) leg.activatedSince = this.clock.now();
    participant.legIds.push(leg.id);
    meeting.participants.set(participant.id, participant);
    this.bridge(leg.bridge).participants.set(participant.id, participant);
    const cdr: LegCdrUpdate = { state: 'connected', call: true };
    if (leg.deactivated) cdr.deactivated = true;
    this.bus.emit({ kind: 'legUpdated', bridge: leg.bridge, leg, cdr });
    this.bus.emit({ kind: 'participantAdded', meeting, participant });
    this.#applyLobby(meeting);
    this.#touchMeeting(meeting, ['participants']);
  }

  #applyLobby(meeting: Meeting): void {
    const now = this.clock.now();
    for (const { leg, action } of lobbyActions(this.meetingLegs(meeting), meeting.locked, this.deactivationMode)) {
      if (action === 'disconnect') {
        this.#endLeg(leg, 'callDeactivated');
        continue;
      }
      const deactivated = action === 'deactivate';
      leg.deactivated = deactivated;
      if (deactivated && leg.activatedSince !== null) {
        leg.activatedMs += now - leg.activatedSince;
        leg.activatedSince = null;
      } else if (!deactivated) {
        leg.activatedSince = now;
      }
      // CDRs and the API show it; no callRoster element Cisco lists does (the roster has no lobby element).
      this.bus.emit({ kind: 'legUpdated', bridge: leg.bridge, leg, cdr: { deactivated } });
      // Someone sent to the lobby no longer sees the meeting, let alone presents to it.
      if (deactivated && leg.meeting.presenterLegId === leg.id) this.#stopPresenting(leg);
    }
  }

  #participantOf(leg: CallLeg): Participant | undefined {
    return leg.meeting.participants.get(leg.groupId);
  }

  #participantChanged(leg: CallLeg, elements: RosterElement[]): void {
    const participant = this.#participantOf(leg);
    if (participant && elements.length > 0) this.bus.emit({ kind: 'participantUpdated', meeting: leg.meeting, participant, elements });
  }

  #endLeg(leg: CallLeg, reason: string, quality?: QualityOverride): void {
    if (leg.ended) return;
    const bridge = this.bridge(leg.bridge);
    const now = this.clock.now();
    leg.ended = true;
    if (leg.meeting.presenterLegId === leg.id) this.#stopPresenting(leg);
    if (leg.meeting.activeSpeakerLegId === leg.id) leg.meeting.activeSpeakerLegId = null;
    if (leg.activatedSince !== null) {
      leg.activatedMs += now - leg.activatedSince;
      leg.activatedSince = null;
    }
    const call = leg.callId ? bridge.calls.get(leg.callId) : undefined;
    if (call) {
      call.legIds.delete(leg.id);
      call.legsCompleted++;
    }
    bridge.legs.delete(leg.id);
    bridge.legsCompleted++;
    this.bus.emit({
      kind: 'legEnded',
      bridge: bridge.name,
      leg,
      reason,
      quality: withPresentation(inventQuality(leg, this.#random, quality), leg, now, quality),
      durationSeconds: seconds(now - leg.startedAt),
      activatedSeconds: seconds(leg.activatedMs),
    });
    const participant = this.#participantOf(leg);
    if (participant && participant.bridge === leg.bridge) {
      participant.legIds = participant.legIds.filter((id) => id !== leg.id);
      if (participant.legIds.length === 0) {
        leg.meeting.participants.delete(participant.id);
        bridge.participants.delete(participant.id);
        this.bus.emit({ kind: 'participantRemoved', meeting: leg.meeting, participant });
      }
    }
  }

  /** Ends a distribution link on both bridges. */
  #endLink(leg: CallLeg, reason: string): void {
    const meeting = leg.meeting;
    const link = meeting.links.find((l) => l.legIds.includes(leg.id));
    this.#endLeg(leg, reason);
    if (!link) return;
    meeting.links = meeting.links.filter((l) => l !== link);
    const peerIndex = link.legIds[0] === leg.id ? 1 : 0;
    const peerBridge = this.bridges.get(link.bridges[peerIndex]);
    const peer = peerBridge?.legs.get(link.legIds[peerIndex]);
    if (peer) this.#endLeg(peer, 'remoteTeardown');
  }

  #endIfEmpty(call: Call): void {
    if (!call.meeting.instances.has(call.bridge)) return;
    if (this.legsOf(call).some(isPersonLeg)) return;
    this.endCall(call);
  }

  #afterInstanceGone(meeting: Meeting): void {
    if (meeting.instances.size === 0) {
      meeting.ended = true;
      this.meetings.delete(meeting.callCorrelator);
      return;
    }
    this.#relink(meeting);
    this.#touchMeeting(meeting, ['distributedInstances', 'participants']);
  }

  /** Crash: the call disappears from its bridge without records; other bridges see their link drop. */
  #dropCall(call: Call): void {
    const meeting = call.meeting;
    const bridge = this.bridge(call.bridge);
    for (const leg of this.legsOf(call)) {
      leg.ended = true;
      if (leg.kind === 'distributionLink') {
        const link = meeting.links.find((l) => l.legIds.includes(leg.id));
        if (link) {
          meeting.links = meeting.links.filter((l) => l !== link);
          const peerIndex = link.legIds[0] === leg.id ? 1 : 0;
          const peer = this.bridges.get(link.bridges[peerIndex])?.legs.get(link.legIds[peerIndex]);
          if (peer) this.#endLeg(peer, 'timeout');
        }
      }
      const participant = this.#participantOf(leg);
      if (participant && participant.bridge === bridge.name) {
        meeting.participants.delete(participant.id);
        this.bus.emit({ kind: 'participantRemoved', meeting, participant });
      }
    }
    bridge.calls.delete(call.id);
    meeting.instances.delete(call.bridge);
    this.#afterInstanceGone(meeting);
  }

  /** Keeps a star of distribution links from the meeting's first instance to every other one. */
  #relink(meeting: Meeting): void {
    const instances = [...meeting.instances.values()];
    const hub = instances[0];
    if (!hub) return;
    for (const other of instances.slice(1)) {
      const linked = meeting.links.some((l) => l.bridges.includes(hub.bridge) && l.bridges.includes(other.bridge));
      if (!linked) this.#createLink(hub, other);
    }
  }

  #createLink(hub: Call, other: Call): void {
    const meeting = hub.meeting;
    const hubBridge = this.bridge(hub.bridge);
    const otherBridge = this.bridge(other.bridge);
    const target = `${meeting.callCorrelator}@`;
    const otherLeg = this.#newLeg(other.bridge, meeting, {
      id: this.newId(),
      kind: 'distributionLink',
      type: 'sip',
      subType: 'distributionLink',
      direction: 'outgoing',
      remoteParty: target + hubBridge.sipDomain,
      displayName: hubBridge.name,
      remoteAddress: hubBridge.sipDomain,
      groupId: this.newId(),
      callId: other.id,
      needsActivation: false,
    });
    const hubLeg = this.#newLeg(hub.bridge, meeting, {
      id: this.newId(),
      kind: 'distributionLink',
      type: 'sip',
      subType: 'distributionLink',
      direction: 'incoming',
      remoteParty: target + otherBridge.sipDomain,
      displayName: otherBridge.name,
      remoteAddress: otherBridge.sipDomain,
      groupId: this.newId(),
      callId: hub.id,
      needsActivation: false,
    });
    otherLeg.peerLegId = hubLeg.id;
    hubLeg.peerLegId = otherLeg.id;
    meeting.links.push({ bridges: [hub.bridge, other.bridge], legIds: [hubLeg.id, otherLeg.id] });
    for (const [leg, call, bridge] of [
      [otherLeg, other, otherBridge],
      [hubLeg, hub, hubBridge],
    ] as const) {
      bridge.legs.set(leg.id, leg);
      bridge.noteLegCount();
      this.bus.emit({ kind: 'legStarted', bridge: bridge.name, leg });
      leg.state = 'connected';
      leg.activatedSince = this.clock.now();
      call.legIds.add(leg.id);
      call.maxActiveLegs = Math.max(call.maxActiveLegs, call.legIds.size);
      this.bus.emit({ kind: 'legUpdated', bridge: bridge.name, leg, cdr: { state: 'connected', call: true } });
    }
  }

  #setOutput(call: Call, what: 'recording' | 'streaming', on: boolean): void {
    if (on && !call[what]) {
      const bridge = this.bridge(call.bridge);
      const kind: LegKind = what === 'recording' ? 'recorder' : 'streamer';
      const leg = this.#newLeg(call.bridge, call.meeting, {
        id: this.newId(),
        kind,
        type: 'acano',
        subType: null,
        direction: 'outgoing',
        remoteParty: `${kind}@${kind}.sim.local`,
        displayName: kind,
        remoteAddress: `${kind}.sim.local`,
        groupId: '',
        callId: call.id,
        needsActivation: false,
      });
      leg.groupId = leg.id;
      bridge.legs.set(leg.id, leg);
      bridge.noteLegCount();
      this.bus.emit({ kind: 'legStarted', bridge: bridge.name, leg });
      leg.state = 'connected';
      leg.activatedSince = this.clock.now();
      call.legIds.add(leg.id);
      this.bus.emit({ kind: 'legUpdated', bridge: bridge.name, leg, cdr: { state: 'connected', call: true } });
      const id = this.newId();
      const target = what === 'recording' ? `recordings/${slug(call.meeting.name)}/${id}.mp4` : `rtmp://stream.sim.local/live/${id}`;
      call[what] = { id, legId: leg.id, target };
      this.bus.emit({
        kind: what === 'recording' ? 'recordingStarted' : 'streamingStarted',
        bridge: call.bridge,
        call,
        output: call[what],
      });
      this.bus.emit({ kind: 'callUpdated', bridge: call.bridge, call, elements: [what] });
    } else if (!on && call[what]) {
      this.#stopOutput(call, what);
      this.bus.emit({ kind: 'callUpdated', bridge: call.bridge, call, elements: [what] });
    }
  }

  #stopOutput(call: Call, what: 'recording' | 'streaming'): void {
    const output = call[what];
    if (!output) return;
    call[what] = null;
    this.bus.emit({ kind: what === 'recording' ? 'recordingEnded' : 'streamingEnded', bridge: call.bridge, call, output });
    const leg = this.bridge(call.bridge).legs.get(output.legId);
    if (leg) this.#endLeg(leg, 'localTeardown');
  }

  #touchMeeting(meeting: Meeting, elements: CallElement[]): void {
    for (const call of meeting.instances.values()) this.bus.emit({ kind: 'callUpdated', bridge: call.bridge, call, elements });
  }

  #inventRemoteParty(kind: LegKind): string {
    const first = this.#random.pick(['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy']);
    const n = this.#random.int(1, 999);
    if (kind === 'guest') return `guest${n}`;
    return `${first}.${n}@${this.#random.pick(['example.com', 'partner.example.org', 'visitor.example.net'])}`;
  }
}

/** A leg that shared content reports the share of its time it did so as presentationContributor. */
function withPresentation(q: LegQuality, leg: CallLeg, now: number, override: QualityOverride | undefined): LegQuality {
  if (leg.presentedMs <= 0 || override?.mediaUsagePercentages) return q;
  const share = Math.min(100, (100 * leg.presentedMs) / Math.max(1, now - leg.startedAt));
  return { ...q, mediaUsagePercentages: { ...q.mediaUsagePercentages, presentationContributor: share.toFixed(1) } };
}

function domainOf(uri: string): string {
  const at = uri.lastIndexOf('@');
  const rest = at >= 0 ? uri.slice(at + 1) : '';
  return rest.replace(/^sip:/, '').split(/[;>]/)[0] ?? '';
}

function displayNameOf(uri: string): string {
  const local = uri.replace(/^sips?:/, '').split('@')[0] ?? uri;
  return local
    .split(/[._-]/)
    .filter(Boolean)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}

function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '.')
      .replace(/^\.|\.$/g, '') || 'meeting'
  );
}
