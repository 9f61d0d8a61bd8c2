import type { FaultOptions } from '../options.ts';
import type { WriteFailureOptions } from '../simulator.ts';

/**
 * A time in a scenario: seconds (number), "90s" / "5m" / "1h", or a clock time "09:30" / "09:30:15"
 * relative to the scenario's `clock` (default: the earliest clock time in the file).
 */
export type TimeSpec = number | string;

interface ParticipantsSpec {
  count: number;
  /** Join window: joins spread over this long after the meeting start; default 0 (all at once). */
  over?: TimeSpec;
  /** Domains remoteParty URIs are drawn from. */
  domains?: string[];
  /** Relative weights of sip / app legs; default { sip: 1 }. */
  kinds?: { sip?: number; app?: number };
  /** Share of participants joining through the IVR; default 0. */
  viaIvr?: number;
}

interface LobbySpec {
  /** Guests who wait in the lobby (needsActivation). */
  count: number;
  /** When they arrive; default the meeting start. */
  at?: TimeSpec;
  /** How many of them the operator admits (PUT participants deactivated=false). */
  admit?: number;
  /** Delay between the guests' arrival and the admission; default 30s. */
  admitAfter?: TimeSpec;
  domains?: string[];
}

export interface MeetingScenario {
  /** Reference used by timeline steps; default "meeting-N". */
  id?: string;
  name?: string;
  /** Bridges the participants are spread over; default the first bridge. */
  bridges?: string[];
  start?: TimeSpec;
  /** Everyone still there leaves at this time; default: the meeting never ends. */
  end?: TimeSpec;
  /** Spread of the final departures; default 0. */
  leaveOver?: TimeSpec;
  /** Lock the call when it starts; default true when a lobby is given (so guests wait although activators are in). */
  locked?: boolean;
  participants?: ParticipantsSpec;
  lobby?: LobbySpec;
  callType?: 'coSpace' | 'adHoc';
}

export type TimelineAction =
  | { action: 'faults'; faults: FaultOptions; bridge?: string }
  | { action: 'receiverOutage'; on: boolean; bridge?: string; receiver?: string }
  | { action: 'restartBridge'; bridge: string; graceful?: boolean; downSeconds?: number }
  | { action: 'lock'; meeting: string; locked?: boolean }
  | { action: 'endMeeting'; meeting: string }
  | { action: 'leave'; meeting: string; count: number; reason?: string }
  | { action: 'record' | 'stream'; meeting: string; on?: boolean }
  /** The meeting's first participant still in the call (not in the lobby) starts sharing content; on: false stops it. */
  | { action: 'shareContent'; meeting: string; on?: boolean }
  /** A participant picked at random becomes the active speaker. */
  | { action: 'activeSpeaker'; meeting: string }
  /** The meeting's call on `bridge` (default its first) dials `remoteParty` (default an invented one), as POST participants. */
  | { action: 'dialOut'; meeting: string; bridge?: string; remoteParty?: string }
  /** `count` participants picked at random are sent to the lobby (PUT participants deactivated=true). */
  | { action: 'toLobby'; meeting: string; count: number }
  /** The next matching API writes fail with this CMS reason (see Simulator.failWrites). */
  | ({ action: 'failWrites' } & WriteFailureOptions);

export type TimelineStep = TimelineAction & { at: TimeSpec };

export interface LoadSpec {
  meetings: number;
  participantsPerMeeting: number;
  /** All joins are spread over this window. */
  joinWindowSeconds: number;
  /** How long participants stay; default 300. */
  durationSeconds?: number;
  /** Bridges each meeting spans (rotating over the cluster); default min(2, bridges). */
  bridgesPerMeeting?: number;
  domains?: string[];
  /** Share of guests (needsActivation) among participants; default 0.1. */
  guestFraction?: number;
  /** Share of app (WebRTC signed-in) legs; default 0.2. */
  appFraction?: number;
}

export interface Scenario {
  /** Seed for the scenario's plan; default the simulator's seed. */
  seed?: number;
  /** Simulated seconds per real second; default 1. */
  speed?: number;
  /** Clock label of t=0 for "HH:MM" times. */
  clock?: string;
  meetings?: MeetingScenario[];
  timeline?: TimelineStep[];
  load?: LoadSpec;
}

/** A scenario object, YAML/JSON text, or a path to a .yaml/.yml/.json file. */
export type ScenarioInput = Scenario | string;

export interface ScenarioRunOptions {
  /** Overrides the scenario's speed; Infinity runs every step at once, in order. */
  speed?: number;
  /** Overrides the scenario's seed. */
  seed?: number;
}

export interface ScenarioReport {
  steps: number;
  joins: number;
  leaves: number;
  admitted: number;
  /** Steps that failed (e.g. a leave of a leg already gone) with their messages. */
  errors: string[];
  stopped: boolean;
  /** Real ms the run took. */
  elapsedMs: number;
}
