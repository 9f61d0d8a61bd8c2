import type { XmlObject } from '@cms/cdr';
import type { callLegs } from '@cms/db';
import { bool, childObject, has, int, text } from './xml-fields.ts';

export type LegRow = typeof callLegs.$inferInsert;

/** A stored record of one call leg, as read back for the fold. */
export interface LegRecord {
  session: string;
  correlatorIndex: number;
  type: string;
  time: string;
  node: string | null;
  callBridge: string | null;
  raw: XmlObject;
}

const END_BASICS = new Set([
  '@id',
  'reason',
  'remoteTeardown',
  'durationSeconds',
  'activatedDuration',
  'encryptedMedia',
  'unencryptedMedia',
  'sipCallId',
]);

function setIf<K extends keyof LegRow>(row: LegRow, key: K, value: LegRow[K] | null): void {
  if (value !== null && value !== undefined) row[key] = value;
}

function earliest(a: string | null | undefined, b: string): string {
  return a && Date.parse(a) <= Date.parse(b) ? a : b;
}

/**
 * `seq` of a leg whose records came from more than one Call Bridge session. CMS drops every call when a bridge
 * restarts, so a real leg never does; should one, no record can be past this and the leg is always refolded.
 */
export const SEQ_SEVERAL_SESSIONS = Number.MAX_SAFE_INTEGER;

/**
 * The call_legs row for one leg, computed from ALL of its stored records in correlatorIndex order. Being a
 * function of the set of records (not of their arrival order), it gives the same row however CMS or our
 * workers reorder, duplicate or delay them: a later value overrides an earlier one, start/connect times
 * are the earliest seen, and a callLegEnd ends the leg whenever it arrives.
 */
export function foldLeg(id: string, records: readonly LegRecord[]): LegRow {
  const row = foldOnto({ id, seq: -1 }, records);
  if (new Set(records.map((r) => r.session)).size > 1) row.seq = SEQ_SEVERAL_SESSIONS;
  return row;
}

/**
 * Whether `records` can be folded onto the stored row instead of refolding every record of the leg: they must
 * all come after everything already folded in (same session, higher correlatorIndex), which is how CMS sends
 * them. Then folding them onto the row gives exactly what folding all records would. A row that has ended
 * is always refolded: reconciliation may have ended it without a record, so the row need not be a fold of
 * its records.
 */
export function extendsLeg(row: LegRow | undefined, records: readonly LegRecord[]): row is LegRow {
  if (!row || row.endedAt || row.session == null) return false;
  const seq = row.seq ?? -1;
  return records.every((r) => r.session === row.session && r.correlatorIndex > seq);
}

/** Folds records onto a starting row (a new leg's `{ id, seq: -1 }`, or a stored row they extend). */
export function foldOnto(start: LegRow, records: readonly LegRecord[]): LegRow {
  const row: LegRow = { ...start };
  const sorted = [...records].sort((a, b) =>
    a.session === b.session ? a.correlatorIndex - b.correlatorIndex : Date.parse(a.time) - Date.parse(b.time),
  );
  for (const record of sorted) {
    const leg = childObject(record.raw, 'callLeg');
    row.seq = Math.max(row.seq ?? -1, record.correlatorIndex);
    row.node ??= record.node;
    row.callBridge ??= record.callBridge;
    row.session ??= record.session;
    switch (record.type) {
      case 'callLegStart':
        row.startedAt = earliest(row.startedAt, record.time);
        setIf(row, 'displayName', text(leg, 'displayName'));
        setIf(row, 'remoteParty', text(leg, 'remoteParty'));
        setIf(row, 'remoteAddress', text(leg, 'remoteAddress'));
        setIf(row, 'localAddress', text(leg, 'localAddress'));
        setIf(row, 'type', text(leg, 'type'));
        setIf(row, 'subType', text(leg, 'subType'));
        setIf(row, 'lyncSubType', text(leg, 'lyncSubType'));
        setIf(row, 'direction', text(leg, 'direction'));
        setIf(row, 'guestConnection', bool(leg, 'guestConnection'));
        setIf(row, 'ownerId', text(leg, 'ownerId'));
        setIf(row, 'sipCallId', text(leg, 'sipCallId'));
        setIf(row, 'groupId', text(leg, 'groupId'));
        setIf(row, 'cdrTag', text(leg, 'cdrTag'));
        setIf(row, 'callId', text(leg, 'call'));
        break;
      case 'callLegUpdate': {
        const state = text(leg, 'state');
        setIf(row, 'state', state);
        if (state === 'connected') row.connectedAt = earliest(row.connectedAt, record.time);
        // A leg is either in an IVR (<ivr/>) or in a call (<call>id</call>); the later update says which.
        if (has(leg, 'ivr')) row.inIvr = true;
        const call = text(leg, 'call');
        if (call) {
          row.callId = call;
          row.inIvr = false;
        }
        setIf(row, 'deactivated', bool(leg, 'deactivated'));
        setIf(row, 'displayName', text(leg, 'displayName'));
        setIf(row, 'remoteAddress', text(leg, 'remoteAddress'));
        setIf(row, 'sipCallId', text(leg, 'sipCallId'));
        setIf(row, 'groupId', text(leg, 'groupId'));
        setIf(row, 'ownerId', text(leg, 'ownerId'));
        break;
      }
      case 'callLegEnd': {
        row.endedAt = record.time;
        setIf(row, 'endReason', text(leg, 'reason'));
        setIf(row, 'durationSeconds', int(leg, 'durationSeconds'));
        setIf(row, 'activatedDuration', int(leg, 'activatedDuration'));
        const encrypted = bool(leg, 'encryptedMedia');
        const unencrypted = bool(leg, 'unencryptedMedia');
        setIf(row, 'encryptedMedia', encrypted ?? (unencrypted === null ? null : !unencrypted));
        if (leg) {
          const quality: XmlObject = {};
          for (const [k, v] of Object.entries(leg)) if (!END_BASICS.has(k)) quality[k] = v;
          if (Object.keys(quality).length) row.quality = quality;
        }
        break;
      }
      default:
        break;
    }
  }
  return row;
}
