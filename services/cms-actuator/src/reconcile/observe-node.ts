import { CmsApiError, type CmsCall, type CmsCallLegSummary, type CmsObject, type CmsValue } from '@cms/cms';
import type { PacedReadClient } from './paced-read-client.ts';

/** A call CMS lists as active, with what GET /api/v1/calls/<id> showed (its message included). */
export interface ObservedCall {
  id: string;
  name: string | null;
  coSpace: string | null;
  callCorrelator: string | null;
  detail: CmsCall;
}

/**
 * A call leg CMS lists; the detail fields are null for legs not read this pass (`read` false): legs we hold CDRs
 * for whose live state the events feed brings, or whose turn in the rotation has not come (see observeNode).
 */
interface ObservedLeg {
  /** GET /api/v1/callLegs/<id> was read this pass: the live columns below are what CMS showed. */
  read: boolean;
  id: string;
  callId: string;
  remoteParty: string | null;
  type: string | null;
  subType: string | null;
  state: string | null;
  deactivated: boolean | null;
  /** status/groupId: the participant that owns the leg. */
  participantId: string | null;
  name: string | null;
  direction: string | null;
  /** configuration/needsActivation false. */
  activator: boolean | null;
  /** configuration/rxAudioMute (the others do not hear this participant), as the roster's audioMuted. */
  audioMuted: boolean | null;
  videoMuted: boolean | null;
  layout: string | null;
  /** The participant's configuration/importance (GET /api/v1/participants/<id>), read within the pass's budget. */
  importance: number | null;
  /** Whether the call's presenterCallLeg (GET /api/v1/calls/<id>) is this leg: it shares content. */
  presenter: boolean | null;
}

export interface NodeSnapshot {
  calls: ObservedCall[];
  legs: ObservedLeg[];
  /** Calls we held as active that CMS answered 404 for: they have ended (their CDRs were lost). */
  gone: string[];
  /** Legs read in detail (GET /api/v1/callLegs/<id>). */
  legsRead: number;
  /** Reads made for the live view beyond what reconciliation needs (known legs and participants' importance). */
  liveReads?: number;
}

export interface SnapshotLookups {
  /** Our calls of this node that have not ended. */
  activeCallIds(): Promise<string[]>;
  /** Which of these legs we hold CDRs for (rows in call_legs), with their participant (groupId). */
  knownLegIds(ids: string[]): Promise<Map<string, string | null>>;
  /** These legs, those whose live view was read longest ago (or never) first. */
  stalestFirst(ids: string[]): Promise<string[]>;
}

/** What a pass reads for the live view alone, beyond what reconciliation needs; none while the events feed brings it. */
export interface ObserveOptions {
  /**
   * Legs we hold CDRs for whose detail the pass reads (their CDRs say who they are, not whether they are muted or
   * which layout they have): the stalest first, so passes take turns over a node with more legs than this.
   */
  knownLegs: number;
  /** Also read the participant (GET /api/v1/participants/<id>) of each leg read, for its importance. */
  importance: boolean;
}

/**
 * Everything one node shows of its active calls: the call list (paged), each call (message included) and its legs
 * (paged), the detail of each leg we have no CDRs for, and, as `options` allow, the live view of legs we have CDRs
 * for (see ObserveOptions). Calls that end meanwhile (404) are counted as gone.
 *
 * CMS pages are not a stable snapshot: a call that moves to an earlier page while we read a later one is missed.
 * So a call of ours that the list did not show is asked for by id before it is declared ended.
 */
export async function observeNode(
  client: PacedReadClient,
  lookups: SnapshotLookups,
  options: ObserveOptions = { knownLegs: 0, importance: false },
): Promise<NodeSnapshot> {
  const listed: string[] = [];
  for await (const call of client.allCalls()) listed.push(call.id);

  const calls: ObservedCall[] = [];
  const legSummaries: CmsCallLegSummary[] = [];
  const gone: string[] = [];
  const observe = async (id: string) => {
    const detail = await ifExists(() => client.getCall(id));
    const legs = detail && (await ifExists(() => collect(client.allCallLegs(id))));
    if (!detail || !legs) {
      gone.push(id);
      return;
    }
    calls.push({
      id,
      name: text(detail.name),
      coSpace: text(detail.coSpace),
      callCorrelator: text(detail.callCorrelator),
      detail,
    });
    for (const leg of legs) legSummaries.push({ ...leg, call: id });
  };
  for (const id of listed) await observe(id);
  const seen = new Set(listed);
  for (const id of await lookups.activeCallIds()) {
    if (!seen.has(id)) await observe(id);
  }

  const known = await lookups.knownLegIds(legSummaries.map((l) => l.id));
  // Legs without CDRs are always read (the policy needs them); legs with CDRs only within the budget, stalest first.
  const unknown = legSummaries.filter((l) => !known.has(l.id));
  const recorded = legSummaries.filter((l) => known.has(l.id));
  const rotation = new Set(
    options.knownLegs > 0 ? (await lookups.stalestFirst(recorded.map((l) => l.id))).slice(0, options.knownLegs) : [],
  );
  const presenters = new Map(calls.map((c) => [c.id, text(c.detail.presenterCallLeg)]));
  const legs: ObservedLeg[] = [];
  let legsRead = 0;
  let liveReads = rotation.size;
  for (const summary of [...unknown, ...recorded]) {
    const base = { id: summary.id, callId: summary.call as string, remoteParty: text(summary.remoteParty) };
    if (known.has(summary.id) && !rotation.has(summary.id)) {
      legs.push({ ...base, ...UNREAD, participantId: known.get(summary.id) ?? null });
      continue;
    }
    legsRead++;
    const leg = await ifExists(() => client.getCallLeg(summary.id));
    if (!leg) continue; // left meanwhile
    const status = typeof leg.status === 'object' && !Array.isArray(leg.status) ? leg.status : {};
    const configuration = typeof leg.configuration === 'object' && !Array.isArray(leg.configuration) ? leg.configuration : {};
    const needsActivation = bool(configuration.needsActivation);
    const participantId = text(status.groupId) ?? known.get(summary.id) ?? null;
    let importance: number | null = null;
    if (participantId && options.importance) {
      liveReads++;
      importance = importanceOf(await ifExists(() => client.getParticipant(participantId)));
    }
    legs.push({
      ...base,
      read: true,
      remoteParty: text(leg.remoteParty) ?? base.remoteParty,
      type: text(leg.type),
      subType: text(leg.subType),
      state: text(status.state),
      deactivated: bool(status.deactivated),
      participantId,
      name: text(leg.name),
      direction: text(leg.direction),
      activator: needsActivation === null ? null : !needsActivation,
      audioMuted: bool(configuration.rxAudioMute),
      videoMuted: bool(configuration.rxVideoMute),
      layout: text(configuration.chosenLayout) ?? text(status.layout),
      importance,
      presenter: presenters.get(base.callId) === summary.id,
    });
  }
  return { calls, legs, gone, legsRead, liveReads };
}

/** A participant's configuration/importance (a whole number; absent when CMS has none set). */
function importanceOf(participant: CmsObject | undefined): number | null {
  const configuration = participant?.configuration;
  if (!configuration || typeof configuration !== 'object' || Array.isArray(configuration)) return null;
  const value = Number(text(configuration.importance) ?? Number.NaN);
  return Number.isInteger(value) ? value : null;
}

const UNREAD = {
  read: false,
  type: null,
  subType: null,
  state: null,
  deactivated: null,
  participantId: null,
  name: null,
  direction: null,
  activator: null,
  audioMuted: null,
  videoMuted: null,
  layout: null,
  importance: null,
  presenter: null,
} as const;

/** The request's answer, or undefined when CMS says the object does not exist (404). */
async function ifExists<T>(request: () => Promise<T>): Promise<T | undefined> {
  try {
    return await request();
  } catch (err) {
    if (err instanceof CmsApiError && err.isNotFound) return undefined;
    throw err;
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function text(value: CmsValue | undefined): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function bool(value: CmsValue | undefined): boolean | null {
  if (value === 'true') return true;
  if (value === 'false') return false;
  return null;
}
