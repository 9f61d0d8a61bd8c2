import { randomUUID } from 'node:crypto';
import { CmsFailure, callDoesNotExist, callLegDoesNotExist, participantDoesNotExist, SimulatorError } from '../errors.ts';
import type { DeactivationMode } from '../options.ts';
import { type SimClock, seconds } from '../util/clock.ts';
import { deriveSeed, Random } from '../util/prng.ts';
import { BridgeState } from './bridge.ts';
import { type CallElement, ChangeBus, type LegCdrUpdate } from './changes.ts';
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
  readonly #ids: Random;
  readonly #random: Random;
  #meetingCounter = 0;

  constructor(options: { seed: number; clock: SimClock; deactivationMode?: DeactivationMode }) {
    this.clock = options.clock;
    this.deactivationMode = options.deactivationMode ?? 'deactivate';
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
    const kind = spec.kind ?? 'sip';
    const direction = spec.direction ?? 'incoming';
    // Outgoing legs are placed from a call, so the call exists (and is named in callLegStart) before the leg.
    let call = direction === 'outgoing' ? this.ensureInstance(meeting, bridge.name) : meeting.instances.get(bridge.name);
    const remoteParty = spec.remoteParty ?? this.#inventRemoteParty(kind);
    const legId = this.newId();
    const leg = this.#newLeg(bridge.name, meeting, {
      id: legId,
      kind,
      type: kind === 'sip' ? 'sip' : 'acano',
      subType: kind === 'sip' ? null : 'webApp',
      direction,
      remoteParty,
      displayName: spec.displayName ?? displayNameOf(remoteParty),
      remoteAddress: spec.remoteAddress ?? domainOf(remoteParty),
      groupId: kind === 'sip' ? this.newId() : legId,
      callId: direction === 'outgoing' && call ? call.id : null,
      needsActivation: spec.needsActivation ?? kind === 'guest',
    });
    leg.admitted = spec.admitted ?? false;
    const participant: Participant = {
      id: leg.groupId,
      meeting,
      bridge: bridge.name,
      name: leg.displayName,
      uri: remoteParty,
      direction,
      kind,
      legIds: [],
      importance: spec.importance ?? null,
      nameLabelOverride: '',
      dtmfSequences: [],
    };
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

  /** Dial-out from a call (POST calls/<id>/callLegs or participants). */
  dialOut(call: Call, spec: Omit<JoinSpec, 'meeting' | 'bridge' | 'direction'>): CallLeg {
    return this.join({ ...spec, meeting: call.meeting, bridge: call.bridge, direction: 'outgoing' });
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
    const config = leg.configuration;
    let rosterChanged = false;
    for (const key of ['rxAudioMute', 'txAudioMute', 'rxVideoMute', 'txVideoMute'] as const) {
      const value = update[key];
      if (value !== undefined && value !== config[key]) {
        config[key] = value;
        rosterChanged = true;
      }
    }
    if (update.chosenLayout !== undefined && update.chosenLayout !== config.chosenLayout) {
      config.chosenLayout = update.chosenLayout;
      rosterChanged = true;
    }
    if (update.callLegProfile !== undefined) config.callLegProfile = update.callLegProfile;
    if (update.dtmfSequence) this.#participantOf(leg)?.dtmfSequences.push(update.dtmfSequence);
    let lobbyChanged = false;
    if (update.needsActivation !== undefined && update.needsActivation !== config.needsActivation) {
      config.needsActivation = update.needsActivation;
      lobbyChanged = true;
    }
    if (update.deactivated !== undefined) {
      leg.admitted = !update.deactivated;
      leg.heldInLobby = update.deactivated;
      lobbyChanged = true;
    }
    if (rosterChanged) this.#participantChanged(leg);
    if (lobbyChanged) this.#applyLobby(leg.meeting);
  }

  updateParticipant(participant: Participant, update: ParticipantUpdate): void {
    let changed = false;
    if (update.importance !== undefined && update.importance !== participant.importance) {
      participant.importance = update.importance;
      changed = true;
    }
    if (update.nameLabelOverride !== undefined) participant.nameLabelOverride = update.nameLabelOverride;
    const bridge = this.bridge(participant.bridge);
    for (const legId of participant.legIds) {
      const leg = bridge.legs.get(legId);
      if (leg) this.updateLeg(leg, update);
    }
    if (changed && participant.meeting.participants.has(participant.id)) {
      this.bus.emit({ kind: 'participantUpdated', meeting: participant.meeting, participant });
    }
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
      this.bus.emit({ kind: 'legUpdated', bridge: leg.bridge, leg, cdr: { deactivated } });
      this.#participantChanged(leg);
    }
  }

  #participantOf(leg: CallLeg): Participant | undefined {
    return leg.meeting.participants.get(leg.groupId);
  }

  #participantChanged(leg: CallLeg): void {
    const participant = this.#participantOf(leg);
    if (participant) this.bus.emit({ kind: 'participantUpdated', meeting: leg.meeting, participant });
  }

  #endLeg(leg: CallLeg, reason: string, quality?: QualityOverride): void {
    if (leg.ended) return;
    const bridge = this.bridge(leg.bridge);
    const now = this.clock.now();
    leg.ended = true;
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
      quality: inventQuality(leg, this.#random, quality),
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
