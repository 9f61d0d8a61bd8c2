import { recordFields, type XmlObject } from '@cms/cdr';
import { callLegs, cdrRecords, type Database } from '@cms/db';
import { type CompiledPolicy, classifyLeg, countsAsParticipant, type LegFacts } from '@cms/policy';
import { asc, type SQL, sql } from 'drizzle-orm';
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
   * naming the leg tells them apart (the index on cdr_records.call_leg_id keeps this a lookup per leg).
   */
  isRecorderOrStreamer: sql<boolean>`exists (select 1 from ${cdrRecords} where ${recordLegId} = ${legId} and ${recordType} in ('recordingStart', 'streamingStart'))`,
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

function legView(row: LegRow, policy: CompiledPolicy) {
  const { isRecorderOrStreamer: _, ...fields } = row;
  return {
    ...fields,
    startedAt: toRfc3339(row.startedAt),
    connectedAt: toRfc3339(row.connectedAt),
    endedAt: toRfc3339(row.endedAt),
    updatedAt: toRfc3339(row.updatedAt),
    quality: row.quality === null ? null : qualityFields(row.id, row.quality),
    classification: classificationView(row, policy),
  };
}

/** The legs matching `where`, in start order (not started yet last, ties by id), each with its classification. */
export async function classifiedLegs(db: Database, policy: CompiledPolicy, where: SQL) {
  const rows = await db.select(legColumns).from(callLegs).where(where).orderBy(sql`${callLegs.startedAt} asc nulls last`, asc(callLegs.id));
  return rows.map((row) => legView(row, policy));
}
