import { recordFields, type XmlObject } from '@cms/cdr';
import { callLegObservations, callLegs, cdrRecords, type Database } from '@cms/db';
import { type CompiledPolicy, classifyLeg, countsAsParticipant, type LegFacts } from '@cms/policy';
import { asc, getTableColumns, inArray, or, type SQLWrapper, sql } from 'drizzle-orm';
import { qualified } from './sql.ts';
import { toRfc3339 } from './time.ts';

const legId = qualified(callLegs, callLegs.id);
const recordLegId = qualified(cdrRecords, cdrRecords.callLegId);
const recordType = qualified(cdrRecords, cdrRecords.type);

const legColumns = {
  id: callLegs.id,
  callId: callLegs.callId,
  node: callLegs.node,
  callBridge: callLegs.callBridge,
  displayName: callLegs.displayName,
  remoteParty: callLegs.remoteParty,
  remoteAddress: callLegs.remoteAddress,
  localAddress: callLegs.localAddress,
  type: callLegs.type,
  subType: callLegs.subType,
  lyncSubType: callLegs.lyncSubType,
  direction: callLegs.direction,
  guestConnection: callLegs.guestConnection,
  ownerId: callLegs.ownerId,
  sipCallId: callLegs.sipCallId,
  groupId: callLegs.groupId,
  cdrTag: callLegs.cdrTag,
  state: callLegs.state,
  inIvr: callLegs.inIvr,
  deactivated: callLegs.deactivated,
  startedAt: callLegs.startedAt,
  connectedAt: callLegs.connectedAt,
  endedAt: callLegs.endedAt,
  endReason: callLegs.endReason,
  durationSeconds: callLegs.durationSeconds,
  activatedDuration: callLegs.activatedDuration,
  encryptedMedia: callLegs.encryptedMedia,
  quality: callLegs.quality,
  updatedAt: callLegs.updatedAt,
  /**
   * CMS gives recorder and streamer legs no type of their own: only a recordingStart / streamingStart record
   * naming the leg tells them apart (the index on cdr_records.call_leg_id keeps this a lookup per leg). `offset 0`
   * keeps it one: without planner statistics Postgres may otherwise hash every recording and streaming record of
   * the year (seconds on 10 million records; bench/scale.ts).
   */
  isRecorderOrStreamer: sql<boolean>`exists (select 1 from ${cdrRecords} where ${recordLegId} = ${legId} and ${recordType} in ('recordingStart', 'streamingStart') offset 0)`,
};

type LegRow = Pick<typeof callLegs.$inferSelect, Exclude<keyof typeof legColumns, 'isRecorderOrStreamer'>> & {
  isRecorderOrStreamer: boolean;
};

/** A leg's classification as the API shows it: the fields every rule has, null where a rule has none. */
interface ClassificationView {
  counts: boolean;
  why: string;
  level: 1 | 2 | 3;
  rule: string;
  matched: string | null;
  host: string | null;
  address: string | null;
}

/**
 * Classified here with the policy this service is configured with, not read from what the policy worker
 * stored, so the operator sees the rule and list entry behind every participant (ended ones included).
 */
function classificationView(leg: LegFacts, policy: CompiledPolicy): ClassificationView {
  const { counts, why } = countsAsParticipant(leg, policy);
  const classification = classifyLeg(leg, policy);
  return {
    counts,
    why,
    level: classification.level,
    rule: classification.rule,
    matched: 'matched' in classification ? classification.matched : null,
    host: 'host' in classification ? classification.host : null,
    address: 'address' in classification ? classification.address : null,
  };
}

/**
 * call_legs.quality holds the callLegEnd element's quality children as CMS sent them (xmltodict); read through
 * the same recordFields as GET /records, so both name things alike (no "@", alarm always an array).
 */
function qualityFields(id: string, quality: XmlObject): XmlObject {
  return recordFields({ '@type': 'callLegEnd', callLeg: { ...quality, '@id': id } }).fields;
}

type Observation = typeof callLegObservations.$inferSelect;

/** CMS's live view of a participant (events feed, or polling where the feed is unavailable), as the API shows it. */
function liveView(o: Observation) {
  return {
    participantId: o.participantId,
    name: o.name,
    state: o.state,
    connected: o.state === null ? null : CONNECTED_STATES.has(o.state.toLowerCase()),
    deactivated: o.deactivated,
    activator: o.activator,
    audioMuted: o.audioMuted,
    videoMuted: o.videoMuted,
    layout: o.layout,
    importance: o.importance,
    presenter: o.presenter,
    activeSpeaker: o.activeSpeaker,
    source: o.source,
    updatedAt: toRfc3339(o.updatedAt) as string,
  };
}

const CONNECTED_STATES = new Set(['connected', 'onhold']);

function legView(row: LegRow, policy: CompiledPolicy, live: Observation | undefined) {
  const { isRecorderOrStreamer: _, ...fields } = row;
  return {
    ...fields,
    startedAt: toRfc3339(row.startedAt),
    connectedAt: toRfc3339(row.connectedAt),
    endedAt: toRfc3339(row.endedAt),
    updatedAt: toRfc3339(row.updatedAt),
    quality: row.quality === null ? null : qualityFields(row.id, row.quality),
    classification: classificationView(row, policy),
    live: live ? liveView(live) : null,
  };
}

/** A participant CMS shows live that no CDR has named yet: the leg fields the live view has, the CDR-only ones null. */
function liveOnlyView(o: Observation, policy: CompiledPolicy) {
  const facts: LegFacts = {
    id: o.id,
    callId: o.callId,
    type: o.type,
    subType: o.subType,
    remoteParty: o.remoteParty,
    state: o.state,
    deactivated: o.deactivated,
  };
  return {
    id: o.id,
    callId: o.callId,
    node: o.node,
    callBridge: null,
    displayName: o.name,
    remoteParty: o.remoteParty,
    remoteAddress: null,
    localAddress: null,
    type: o.type,
    subType: o.subType,
    lyncSubType: null,
    direction: o.direction,
    guestConnection: null,
    ownerId: null,
    sipCallId: null,
    groupId: o.participantId,
    cdrTag: null,
    state: o.state,
    inIvr: null,
    deactivated: o.deactivated,
    startedAt: null,
    connectedAt: null,
    endedAt: null,
    endReason: null,
    durationSeconds: null,
    activatedDuration: null,
    encryptedMedia: null,
    quality: null,
    updatedAt: toRfc3339(o.updatedAt) as string,
    classification: classificationView(facts, policy),
    live: liveView(o),
  };
}

/**
 * The legs of the calls in `callIds` (a list or a subquery), in start order (not started yet last, ties by id), each
 * with its classification and CMS's live view of it (`live`, null when neither the events feed nor polling has shown
 * it). A CDR leg's live view is the observation of the same leg, or of the same participant (groupId); participants
 * CMS shows that no CDR has named yet follow as legs of their own, after the CDR legs.
 */
export async function classifiedLegs(db: Database, policy: CompiledPolicy, callIds: SQLWrapper | string[]) {
  const rows = await db
    .select(legColumns)
    .from(callLegs)
    .where(inArray(callLegs.callId, callIds))
    .orderBy(sql`${callLegs.startedAt} asc nulls last`, asc(callLegs.id));
  const legIds = rows.map((r) => r.id);
  const groupIds = rows.flatMap((r) => (r.groupId ? [r.groupId] : []));
  const observations = await db
    .select({ ...getTableColumns(callLegObservations), inScope: sql<boolean>`${inArray(callLegObservations.callId, callIds)}` })
    .from(callLegObservations)
    .where(
      or(
        inArray(callLegObservations.callId, callIds),
        ...(legIds.length ? [inArray(callLegObservations.id, legIds)] : []),
        ...(groupIds.length ? [inArray(callLegObservations.participantId, groupIds)] : []),
      ),
    )
    .orderBy(asc(callLegObservations.id));
  const byId = new Map(observations.map((o) => [o.id, o]));
  const byParticipant = new Map(observations.flatMap((o) => (o.participantId ? [[o.participantId, o] as const] : [])));
  const used = new Set<string>();
  const legs = rows.map((row) => {
    // An ended leg has left: an observation of its participant belongs to the leg that replaced it, if any. Of two
    // observations (the leg's and its participant's, before they are merged into one), the fresher tells.
    const candidates = [byId.get(row.id), row.endedAt === null && row.groupId ? byParticipant.get(row.groupId) : undefined];
    const live = candidates.reduce<Observation | undefined>(
      (best, o) => (o && (!best || o.updatedAt > best.updatedAt) ? o : best),
      undefined,
    );
    for (const o of candidates) if (o) used.add(o.id);
    return legView(row, policy, live);
  });
  const cdrLegIds = new Set(legIds);
  const liveOnly = observations.filter((o) => o.inScope && !used.has(o.id) && !cdrLegIds.has(o.id)).map((o) => liveOnlyView(o, policy));
  return [...legs, ...liveOnly];
}
