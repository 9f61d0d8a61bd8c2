import type { CdrRecord } from '@cms/cdr';
import type { calls } from '@cms/db';
import { childObject, int, text } from './xml-fields.ts';

export type CallRow = typeof calls.$inferInsert;

/**
 * Call rows are written by two record types that set disjoint fields (callStart: what the call is; callEnd:
 * how it went), plus placeholders for calls first named by a leg. Merging patches field by field, keeping
 * the first non-null value, is therefore independent of arrival order.
 */
export function callPatch(record: CdrRecord, node: string | null, callBridge: string | null, session: string): CallRow | null {
  if (!record.callId) return null;
  const base: CallRow = { id: record.callId, node, callBridge, session };
  if (record.objectKind !== 'call') return base;
  const call = childObject(record.raw, 'call');
  if (record.type === 'callStart') {
    return {
      ...base,
      name: text(call, 'name'),
      ownerName: text(call, 'ownerName'),
      callType: text(call, 'callType'),
      coSpace: text(call, 'coSpace'),
      tenant: text(call, 'tenant'),
      cdrTag: text(call, 'cdrTag'),
      callCorrelator: text(call, 'callCorrelator'),
      startedAt: record.time,
    };
  }
  if (record.type === 'callEnd') {
    return {
      ...base,
      endedAt: record.time,
      callLegsCompleted: int(call, 'callLegsCompleted'),
      callLegsMaxActive: int(call, 'callLegsMaxActive'),
      durationSeconds: int(call, 'durationSeconds'),
      endpointRecorded: text(call, 'endpointRecorded'),
    };
  }
  return base;
}

/** Merges two patches of the same call: the first non-null value of each field wins. */
export function mergeCallPatches(a: CallRow, b: CallRow): CallRow {
  const merged: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) if (merged[k] === null || merged[k] === undefined) merged[k] = v;
  return merged as CallRow;
}
