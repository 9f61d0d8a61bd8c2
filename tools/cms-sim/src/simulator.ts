import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { ApiCounters, ApiRequestEntry, ArmedWriteFailure, WriteFailureSpec } from './api/faults.ts';
import { FaultGate } from './api/faults.ts';
import { buildBridgeServer } from './api/server.ts';
import { messageTimeRemaining, messageVisible } from './api/views.ts';
import { WriteLog, type WriteLogEntry, type WriteLogFilter } from './api/writeLog.ts';
import { BridgeCdr } from './cdr/pipeline.ts';
import type { SimRecord } from './cdr/records.ts';
import type { ReceiverStats } from './cdr/sender.ts';
import { startControlServer } from './control/server.ts';
import { CdrDeliveryTimeoutError, SimulatorError } from './errors.ts';
import { EventsHub, type EventsStats } from './events/hub.ts';
import type { BridgeState } from './model/bridge.ts';
import type { LegQuality } from './model/changes.ts';
import { type CallUpdate, Cluster, type LegUpdate, type MeetingSpec, type ParticipantUpdate } from './model/cluster.ts';
import type { Call, CallLeg, Meeting } from './model/types.ts';
import {
  type FaultOptions,
  mergeFaults,
  NO_FAULTS,
  type ResolvedFaults,
  resolveCdrOptions,
  type SimulatorOptions,
  type TlsFiles,
} from './options.ts';
import { startScenario } from './scenario/runner.ts';
import type { ScenarioInput, ScenarioReport, ScenarioRunOptions } from './scenario/types.ts';
import { SimClock } from './util/clock.ts';
import { deriveSeed, Random, randomSeed } from './util/prng.ts';

export interface BridgeInfo {
  name: string;
  /** e.g. http://127.0.0.1:40123 (https when TLS files were given) */
  url: string;
  port: number;
  username: string;
  password: string;
  callBridgeId: string;
  /** Current session GUID (changes on restart). */
  session: string;
}

export interface StartCallOptions extends MeetingSpec {
  /** Bridges that host the call from the start (distribution links between them). Default: the first bridge. [] = none until someone joins. */
  bridges?: string[];
  /** Shorthand for bridges: [bridge]. */
  bridge?: string;
  locked?: boolean;
}

export interface JoinOptions {
  /** The meeting (handle or callCorrelator); or give `call`. */
  meeting?: MeetingHandle | string;
  /** A call id on any bridge; the meeting is that call's meeting and the bridge defaults to that call's bridge. */
  call?: string;
  /** Bridge hosting the new leg; default the meeting's first bridge, else the first bridge. */
  bridge?: string;
  kind?: 'sip' | 'app' | 'guest';
  direction?: 'incoming' | 'outgoing';
  remoteParty?: string;
  displayName?: string;
  remoteAddress?: string;
  /** Default true for guests, false otherwise. */
  needsActivation?: boolean;
  viaIvr?: boolean;
  /** Join already admitted (bypass the lobby). */
  admitted?: boolean;
  importance?: number | null;
}

export interface JoinResult {
  callLegId: string;
  participantId: string;
  callId: string;
  bridge: string;
  deactivated: boolean;
}

/** failWrites(): which bridge's writes (default every bridge, each with its own count) and the answer. */
export type WriteFailureOptions = WriteFailureSpec & { bridge?: string };

export interface LegInspection {
  id: string;
  participantId: string;
  kind: string;
  type: string;
  subType: string | null;
  direction: string;
  remoteParty: string;
  displayName: string;
  state: string;
  deactivated: boolean;
  needsActivation: boolean;
  rxAudioMute: boolean;
  txAudioMute: boolean;
  rxVideoMute: boolean;
  txVideoMute: boolean;
  chosenLayout: string;
  /** Sharing content (presentation). */
  presenter: boolean;
  activeSpeaker: boolean;
}

export interface CallInspection {
  id: string;
  bridge: string;
  name: string;
  callCorrelator: string;
  coSpace: string | null;
  messageText: string;
  messagePosition: string;
  messageDuration: number | 'permanent';
  messageTimeRemaining: number | null;
  /** Whether participants currently see messageText. */
  messageVisible: boolean;
  locked: boolean;
  recording: boolean;
  streaming: boolean;
  /** The presenting leg if it is on this call's bridge (as GET /calls/<id> presenterCallLeg), else null. */
  presenterCallLeg: string | null;
  /** The meeting's presenting leg, on whichever bridge. */
  presenter: string | null;
  activeSpeaker: string | null;
  participants: {
    id: string;
    name: string;
    uri: string;
    bridge: string;
    importance: number | null;
    state: string;
    deactivated: boolean;
  }[];
  legs: LegInspection[];
}

export interface BridgeInspection {
  name: string;
  url: string;
  callBridgeId: string;
  session: string;
  restarts: number;
  faults: ResolvedFaults;
  counters: ApiCounters;
  cdrCorrelatorIndex: number;
  alarms: { id: string; type: string; since: string }[];
  events: EventsStats;
  /** Write failures armed with failWrites() and not used up yet. */
  writeFailures: ArmedWriteFailure[];
  calls: CallInspection[];
}

export interface Inspection {
  seed: number;
  speed: number;
  clustered: boolean;
  bridges: BridgeInspection[];
  writes: { total: number; byOutcome: Record<string, number> };
  cdr: CdrStat[];
}

export type CdrStat = ReceiverStats & { bridge: string; session: string };

export interface MeetingHandle {
  readonly callCorrelator: string;
  readonly name: string;
  readonly coSpace: string | null;
  /** bridge name → call id, live (calls appear when someone joins a new bridge and go when they end). */
  readonly calls: Readonly<Record<string, string>>;
  /** The call id on `bridge` (throws if the meeting has no call there). */
  callId(bridge?: string): string;
  readonly ended: boolean;
}

interface BridgeRuntime {
  name: string;
  state: BridgeState;
  cdr: BridgeCdr;
  gate: FaultGate;
  events: EventsHub;
  app: FastifyInstance;
  port: number;
  url: string;
  username: string;
  password: string;
}

export interface RestartOptions {
  /** End calls with CDRs first; default false (a crash: calls vanish). */
  graceful?: boolean;
  /** Real ms during which the bridge answers 503 (and refuses events connections); default 0. */
  downMs?: number;
}

/**
 * A cluster of simulated Call Bridges. Every method that changes the model is synchronous and shows up
 * in later API answers, CDRs and events at once. `sim.driver` is the simulator itself (for readability).
 */
export class Simulator {
  readonly seed: number;
  readonly clock: SimClock;
  readonly cluster: Cluster;
  readonly clustered: boolean;
  controlUrl: string | null = null;
  readonly #runtimes: BridgeRuntime[];
  readonly #writeLog: WriteLog;
  readonly #closers: (() => Promise<void>)[] = [];
  readonly #scenarioStops = new Set<() => void>();
  #stopped = false;

  /** @internal use startSimulator */
  constructor(p: { seed: number; clock: SimClock; cluster: Cluster; clustered: boolean; runtimes: BridgeRuntime[]; writeLog: WriteLog }) {
    this.seed = p.seed;
    this.clock = p.clock;
    this.cluster = p.cluster;
    this.clustered = p.clustered;
    this.#runtimes = p.runtimes;
    this.#writeLog = p.writeLog;
  }

  get driver(): this {
    return this;
  }

  get bridges(): BridgeInfo[] {
    return this.#runtimes.map((r) => this.#info(r));
  }

  bridge(name: string): BridgeInfo {
    return this.#info(this.#runtime(name));
  }

  // ---- calls and participants ----

  startCall(options: StartCallOptions = {}): MeetingHandle {
    const meeting = this.cluster.createMeeting(options);
    const bridges = options.bridges ?? [options.bridge ?? this.#firstBridge()];
    for (const bridge of bridges) this.cluster.ensureInstance(meeting, bridge);
    if (options.locked) this.cluster.lockMeeting(meeting, true);
    return this.#handle(meeting);
  }

  /** Handle of a live meeting by callCorrelator or by one of its call ids. */
  meeting(ref: string): MeetingHandle {
    return this.#handle(this.#meeting(ref));
  }

  join(options: JoinOptions): JoinResult {
    let meeting: Meeting;
    let bridge = options.bridge;
    if (options.call) {
      const call = this.cluster.locateCall(options.call);
      if (!call) throw new SimulatorError(`no call ${options.call}`);
      meeting = call.meeting;
      bridge ??= call.bridge;
    } else if (options.meeting !== undefined) {
      meeting = this.#meeting(typeof options.meeting === 'string' ? options.meeting : options.meeting.callCorrelator);
    } else {
      throw new SimulatorError('join needs a meeting or a call');
    }
    bridge ??= meeting.instances.keys().next().value ?? this.#firstBridge();
    const leg = this.cluster.join({ ...options, meeting, bridge });
    return {
      callLegId: leg.id,
      participantId: leg.groupId,
      callId: leg.callId ?? '',
      bridge: leg.bridge,
      deactivated: leg.deactivated,
    };
  }

  /** Admits a participant from the lobby (as PUT /participants/<id> deactivated=false). Takes a participant or leg id. */
  admit(participantOrLegId: string): void {
    this.cluster.admit(this.#participant(participantOrLegId));
  }

  /** A leg leaves with a CMS reason (default remoteTeardown); `quality` overrides the invented callLegEnd media data. */
  leave(callLegId: string, reason = 'remoteTeardown', options: { quality?: Partial<LegQuality> } = {}): void {
    const leg = this.cluster.locateLeg(callLegId);
    if (!leg) throw new SimulatorError(`no call leg ${callLegId}`);
    this.cluster.leave(leg, reason, options.quality);
  }

  /** A call id ends that bridge's call only (like DELETE /calls/<id>); a meeting handle or callCorrelator ends it everywhere. */
  endCall(target: MeetingHandle | string, legReason = 'callEnded'): void {
    if (typeof target === 'string') {
      const call = this.cluster.locateCall(target);
      if (call) {
        this.cluster.endCall(call, legReason);
        return;
      }
    }
    const correlator = typeof target === 'string' ? target : target.callCorrelator;
    this.cluster.endMeeting(this.#meeting(correlator), legReason);
  }

  /** Same effect as PUT /calls/<id> (without going through HTTP or the write log). */
  updateCall(callId: string, update: CallUpdate): void {
    this.cluster.updateCall(this.#call(callId), update);
  }

  updateCallLeg(callLegId: string, update: LegUpdate): void {
    const leg = this.cluster.locateLeg(callLegId);
    if (!leg) throw new SimulatorError(`no call leg ${callLegId}`);
    this.cluster.updateLeg(leg, update);
  }

  updateParticipant(participantId: string, update: ParticipantUpdate): void {
    this.cluster.updateParticipant(this.#participant(participantId), update);
  }

  /** Sends a participant (or a leg's participant) to the lobby, as PUT /participants/<id> deactivated=true. */
  moveToLobby(participantOrLegId: string): void {
    this.cluster.updateParticipant(this.#participant(participantOrLegId), { deactivated: true });
  }

  /** The far end answers a ringing dial-out now (see the dialOutAnswerMs option). */
  answerDialOut(callLegId: string): void {
    const leg = this.#leg(callLegId);
    if (leg.state !== 'ringing') throw new SimulatorError(`call leg ${callLegId} is not ringing (${leg.state})`);
    this.cluster.answer(leg);
  }

  /** A leg starts (on = true) or stops sharing content; one presenter per meeting, a new one takes over. */
  shareContent(callLegId: string, on = true): void {
    this.cluster.shareContent(this.#leg(callLegId), on);
  }

  /** The leg heard as active speaker; null (with `meeting`: callCorrelator or call id) clears it. */
  setActiveSpeaker(callLegId: string | null, options: { meeting?: string } = {}): void {
    if (callLegId === null) {
      if (!options.meeting) throw new SimulatorError('setActiveSpeaker(null) needs { meeting }');
      this.cluster.setActiveSpeaker(this.#meeting(options.meeting), null);
      return;
    }
    const leg = this.#leg(callLegId);
    this.cluster.setActiveSpeaker(leg.meeting, leg);
  }

  /**
   * The next matching API write(s) get CMS's failure answer (`<failureDetails><reason/></failureDetails>`)
   * and change nothing; they are in the write log as `failed` with the reason.
   */
  failWrites(options: WriteFailureOptions): ArmedWriteFailure[] {
    const { bridge, ...spec } = options;
    return this.#select(bridge).map((r) => ({ ...r.gate.armFailure(spec) }));
  }

  clearWriteFailures(options: { bridge?: string } = {}): void {
    for (const r of this.#select(options.bridge)) r.gate.clearFailures();
  }

  record(callId: string, on = true): void {
    this.cluster.updateCall(this.#call(callId), { recording: on });
  }

  stream(callId: string, on = true): void {
    this.cluster.updateCall(this.#call(callId), { streaming: on });
  }

  // ---- faults ----

  /** New session, cleared events connections and tokens; calls are lost (crash) unless graceful. */
  restartBridge(name: string, options: RestartOptions = {}): BridgeInfo {
    const runtime = this.#runtime(name);
    this.cluster.restart(name, { graceful: options.graceful ?? false });
    runtime.events.closeAll(1012, 'service restart');
    if (options.downMs && options.downMs > 0) runtime.gate.downUntil = Date.now() + options.downMs;
    return this.#info(runtime);
  }

  /** Events service off (GET /events/v1 answers 404, open connections drop) or on again. */
  setEventsEnabled(on: boolean, options: { bridge?: string } = {}): void {
    for (const r of this.#select(options.bridge)) r.events.setEnabled(on);
  }

  /** Drops every events WebSocket of a bridge without a close frame (a network drop); calls carry on. */
  dropEventsConnections(options: { bridge?: string } = {}): void {
    for (const r of this.#select(options.bridge)) r.events.dropConnections();
  }

  /** Simulated CDR receiver outage: POSTs fail as if the receiver were unreachable. */
  receiverOutage(on: boolean, options: { bridge?: string; receiver?: string } = {}): void {
    for (const r of this.#select(options.bridge)) r.cdr.setOutage(on, options.receiver);
  }

  setFaults(faults: FaultOptions, options: { bridge?: string } = {}): void {
    for (const r of this.#select(options.bridge)) r.gate.set(faults);
  }

  /**
   * Serves a new key and certificate on a bridge started with TLS (a renewed or replaced Web Admin certificate).
   * New connections get it; open keep-alive connections keep the one they shook hands with.
   */
  setTls(files: TlsFiles, options: { bridge?: string } = {}): void {
    const material = readTls(files) as { key: Buffer; cert: Buffer };
    for (const r of this.#select(options.bridge)) {
      const server = r.app.server as unknown as { setSecureContext?: (options: { key: Buffer; cert: Buffer }) => void };
      if (!r.url.startsWith('https:') || typeof server.setSecureContext !== 'function')
        throw new SimulatorError(`bridge ${r.name} does not serve HTTPS (start it with tls)`);
      server.setSecureContext(material);
    }
  }

  setCdrReceivers(uris: string[], options: { bridge?: string } = {}): void {
    for (const r of this.#select(options.bridge)) r.cdr.setReceivers(uris.map((u) => u.replaceAll('{bridge}', r.name)));
  }

  // ---- observation ----

  inspect(): Inspection {
    const now = this.clock.now();
    const byOutcome: Record<string, number> = {};
    const writes = this.#writeLog.list();
    for (const w of writes) byOutcome[w.outcome] = (byOutcome[w.outcome] ?? 0) + 1;
    return {
      seed: this.seed,
      speed: this.clock.speed,
      clustered: this.clustered,
      bridges: this.#runtimes.map((r) => ({
        name: r.name,
        url: r.url,
        callBridgeId: r.state.callBridgeId,
        session: r.state.session,
        restarts: r.state.restarts,
        faults: { ...r.gate.faults },
        counters: { ...r.gate.counters },
        cdrCorrelatorIndex: r.cdr.nextCorrelatorIndex,
        alarms: r.cdr.alarm ? [{ id: r.cdr.alarm.id, type: r.cdr.alarm.type, since: new Date(r.cdr.alarm.since).toISOString() }] : [],
        events: r.events.stats(),
        writeFailures: r.gate.armedFailures.map((f) => ({ ...f })),
        calls: [...r.state.calls.values()].map((call) => this.#inspectCall(call, now)),
      })),
      writes: { total: writes.length, byOutcome },
      cdr: this.cdrStats(),
    };
  }

  /** The current state of one call (any bridge). */
  inspectCall(callId: string): CallInspection {
    return this.#inspectCall(this.#call(callId), this.clock.now());
  }

  cdrStats(): CdrStat[] {
    return this.#runtimes.flatMap((r) => r.cdr.stats());
  }

  /** Records a bridge generated (whatever their delivery), oldest first. */
  cdrRecords(bridge?: string): SimRecord[] {
    return this.#select(bridge).flatMap((r) => [...r.cdr.log]);
  }

  writeLog(filter: WriteLogFilter = {}): WriteLogEntry[] {
    return this.#writeLog.list(filter);
  }

  /** Every API request (reads too) a bridge received, with its arrival time, oldest first. */
  requestLog(options: { bridge?: string } = {}): (ApiRequestEntry & { bridge: string })[] {
    return this.#select(options.bridge)
      .flatMap((r) => r.gate.requests.map((e) => ({ ...e, bridge: r.name })))
      .sort((a, b) => a.atMs - b.atMs);
  }

  eventsStats(bridge?: string): EventsStats[] {
    return this.#select(bridge).map((r) => r.events.stats());
  }

  /** Resolves once every generated record was acknowledged (200) or discarded by every receiver. */
  async waitForCdrsDelivered(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    while (!this.#runtimes.every((r) => r.cdr.idle)) {
      if (Date.now() > deadline)
        throw new CdrDeliveryTimeoutError(
          this.#runtimes.reduce((n, r) => n + r.cdr.pending, 0),
          timeoutMs,
        );
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  // ---- scenarios ----

  /** Runs a scenario (object, YAML/JSON text, or file path) against this simulator. */
  runScenario(input: ScenarioInput, options: ScenarioRunOptions = {}): Promise<ScenarioReport> {
    return startScenario(this, input, options).done;
  }

  /** @internal the control server registers its shutdown here */
  onStop(closer: () => Promise<void>): void {
    this.#closers.push(closer);
  }

  /** @internal a running scenario registers its stop here so stop() ends it */
  trackScenario(stop: () => void): () => void {
    this.#scenarioStops.add(stop);
    return () => this.#scenarioStops.delete(stop);
  }

  /** Closes every server, socket and timer. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.cluster.dispose();
    for (const stop of this.#scenarioStops) stop();
    for (const r of this.#runtimes) r.events.closeAll(1001, 'shutdown');
    await Promise.all([
      ...this.#runtimes.map((r) => r.app.close()),
      ...this.#runtimes.map((r) => r.cdr.stop()),
      ...this.#closers.map((c) => c()),
    ]);
  }

  // ---- internals ----

  #info(r: BridgeRuntime): BridgeInfo {
    return {
      name: r.name,
      url: r.url,
      port: r.port,
      username: r.username,
      password: r.password,
      callBridgeId: r.state.callBridgeId,
      session: r.state.session,
    };
  }

  #runtime(name: string): BridgeRuntime {
    const r = this.#runtimes.find((x) => x.name === name);
    if (!r) throw new SimulatorError(`unknown bridge ${name} (have ${this.#runtimes.map((x) => x.name).join(', ')})`);
    return r;
  }

  #select(bridge?: string): BridgeRuntime[] {
    return bridge === undefined ? this.#runtimes : [this.#runtime(bridge)];
  }

  #firstBridge(): string {
    return (this.#runtimes[0] as BridgeRuntime).name;
  }

  #meeting(ref: string): Meeting {
    const meeting = this.cluster.meetings.get(ref) ?? this.cluster.locateCall(ref)?.meeting;
    if (!meeting) throw new SimulatorError(`no live meeting ${ref}`);
    return meeting;
  }

  #leg(callLegId: string): CallLeg {
    const leg = this.cluster.locateLeg(callLegId);
    if (!leg) throw new SimulatorError(`no call leg ${callLegId}`);
    return leg;
  }

  #call(callId: string): Call {
    const call = this.cluster.locateCall(callId);
    if (!call) throw new SimulatorError(`no call ${callId}`);
    return call;
  }

  #participant(id: string) {
    for (const meeting of this.cluster.meetings.values()) {
      const direct = meeting.participants.get(id);
      if (direct) return direct;
    }
    const leg = this.cluster.locateLeg(id);
    const participant = leg ? leg.meeting.participants.get(leg.groupId) : undefined;
    if (!participant) throw new SimulatorError(`no participant or leg ${id}`);
    return participant;
  }

  #handle(meeting: Meeting): MeetingHandle {
    return {
      callCorrelator: meeting.callCorrelator,
      name: meeting.name,
      coSpace: meeting.coSpace,
      get calls() {
        return Object.fromEntries([...meeting.instances].map(([bridge, call]) => [bridge, call.id]));
      },
      callId: (bridge?: string) => {
        const call = bridge ? meeting.instances.get(bridge) : meeting.instances.values().next().value;
        if (!call) throw new SimulatorError(`meeting ${meeting.name} has no call${bridge ? ` on ${bridge}` : ''}`);
        return call.id;
      },
      get ended() {
        return meeting.ended;
      },
    };
  }

  #inspectCall(call: Call, now: number): CallInspection {
    const m = call.meeting;
    return {
      id: call.id,
      bridge: call.bridge,
      name: m.name,
      callCorrelator: m.callCorrelator,
      coSpace: m.coSpace,
      messageText: call.messageText,
      messagePosition: call.messagePosition,
      messageDuration: call.messageDuration,
      messageTimeRemaining: messageTimeRemaining(call, now) ?? null,
      messageVisible: messageVisible(call, now),
      locked: m.locked,
      recording: call.recording !== null,
      streaming: call.streaming !== null,
      presenterCallLeg: m.presenterLegId && call.legIds.has(m.presenterLegId) ? m.presenterLegId : null,
      presenter: m.presenterLegId,
      activeSpeaker: m.activeSpeakerLegId,
      participants: [...m.participants.values()].map((p) => {
        const legs = p.legIds.map((id) => this.cluster.bridges.get(p.bridge)?.legs.get(id)).filter((l) => l !== undefined);
        return {
          id: p.id,
          name: p.name,
          uri: p.uri,
          bridge: p.bridge,
          importance: p.importance,
          state: legs[0]?.state ?? 'connected',
          deactivated: legs.some((l) => l.deactivated),
        };
      }),
      legs: this.cluster.legsOf(call).map((l) => ({
        id: l.id,
        participantId: l.groupId,
        kind: l.kind,
        type: l.type,
        subType: l.subType,
        direction: l.direction,
        remoteParty: l.remoteParty,
        displayName: l.displayName,
        state: l.state,
        deactivated: l.deactivated,
        needsActivation: l.configuration.needsActivation,
        rxAudioMute: l.configuration.rxAudioMute,
        txAudioMute: l.configuration.txAudioMute,
        rxVideoMute: l.configuration.rxVideoMute,
        txVideoMute: l.configuration.txVideoMute,
        chosenLayout: l.configuration.chosenLayout,
        presenter: m.presenterLegId === l.id,
        activeSpeaker: m.activeSpeakerLegId === l.id,
      })),
    };
  }
}

function readTls(files: TlsFiles | undefined): { key: Buffer; cert: Buffer } | undefined {
  return files ? { key: readFileSync(files.keyFile), cert: readFileSync(files.certFile) } : undefined;
}

/** Starts the bridges (and the control API unless controlPort is null). Always call stop(). */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const seed = options.seed ?? randomSeed();
  const clock = new SimClock(options.speed ?? 1);
  const bridgeOptions = options.bridges?.length ? options.bridges : [{ name: 'cms-1' }];
  const clustered = options.clustered ?? bridgeOptions.length > 1;
  const cdrOptions = resolveCdrOptions(options.cdr);
  const faults = mergeFaults(NO_FAULTS, options.faults ?? {});
  const host = options.host ?? '127.0.0.1';
  const urlHost = options.advertisedHost ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
  const pageCap = options.pageCap ?? 10;
  if (pageCap < 1) throw new RangeError('pageCap must be >= 1');
  if (options.dialOutAnswerMs != null && !(options.dialOutAnswerMs >= 0)) throw new RangeError('dialOutAnswerMs must be >= 0 or null');
  const cluster = new Cluster({ seed, clock, deactivationMode: options.deactivationMode, dialOutAnswerMs: options.dialOutAnswerMs });
  const writeLog = new WriteLog(options.writeLogLimit ?? 100_000);
  const runtimes: BridgeRuntime[] = [];
  const urls = new Map<string, string>();
  const simulator = new Simulator({ seed, clock, cluster, clustered, runtimes, writeLog });

  try {
    for (const b of bridgeOptions) {
      const state = cluster.addBridge(b.name, b.callBridgeId ?? new Random(deriveSeed(seed, `bridge:${b.name}`)).uuid());
      const receivers = (b.cdrReceivers ?? options.cdrReceivers ?? []).map((u) => u.replaceAll('{bridge}', b.name));
      const cdr = new BridgeCdr({
        bridge: state,
        options: cdrOptions,
        clock,
        clustered,
        newId: () => randomUUID(),
        logLimit: options.recordLogLimit ?? 100_000,
        receivers,
      });
      const gate = new FaultGate({ ...faults }, new Random(deriveSeed(seed, `faults:${b.name}`)));
      const events = new EventsHub(cluster, b.name, {
        maxConnections: options.events?.maxConnections ?? 5,
        maxSubscriptions: options.events?.maxSubscriptions ?? 100,
        tokenTtlMs: options.events?.tokenTtlMs ?? 600_000,
      });
      const username = b.username ?? 'admin';
      const password = b.password ?? 'admin';
      const tls = readTls(b.tls ?? options.tls);
      const app = await buildBridgeServer({
        ctx: { bridge: b.name, cluster, cdr, pageCap, clustered, bridgeUrl: (name) => urls.get(name) ?? '' },
        gate,
        writeLog,
        events,
        credentials: { username, password },
        tls,
      });
      const runtime: BridgeRuntime = { name: b.name, state, cdr, gate, events, app, port: 0, url: '', username, password };
      runtimes.push(runtime);
      await app.listen({ host, port: b.port ?? 0 });
      const address = app.server.address();
      runtime.port = typeof address === 'object' && address ? address.port : (b.port ?? 0);
      runtime.url = `${tls ? 'https' : 'http'}://${urlHost}:${runtime.port}`;
      urls.set(b.name, runtime.url);
    }
    cluster.bus.on((change) => {
      for (const r of runtimes) {
        r.cdr.handle(change);
        r.events.handle(change);
      }
    });
    if (options.controlPort !== null) {
      const control = await startControlServer(simulator, {
        host,
        port: options.controlPort ?? 0,
        urlHost,
        token: options.controlToken,
      });
      simulator.controlUrl = control.url;
      simulator.onStop(() => control.close());
    }
  } catch (err) {
    await simulator.stop().catch(() => undefined);
    throw err;
  }
  options.logger?.info({ seed, bridges: simulator.bridges.map((b) => ({ name: b.name, url: b.url })) }, 'cms-sim started');
  return simulator;
}
