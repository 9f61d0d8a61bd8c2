import { findRecordObject, textField } from './record-object.ts';
import { isRfc3339 } from './rfc3339.ts';
import { nulCharacterAt, unstorableId, unstorableTime } from './storable.ts';
import type { CdrRecord, XmlObject, XmlValue } from './types.ts';

export type RecordResult = { record: CdrRecord; reason?: undefined } | { record?: undefined; reason: string };

const DIGITS = /^[0-9]+$/;
// numPreceedingRecordsMissing is stored in a 32-bit column; no Call Bridge buffers anywhere near that many.
const MAX_MISSING = 2_147_483_647;

/** Validates one `<record>` (in xmltodict form) and extracts what the queue and the database index on. */
export function toCdrRecord(raw: XmlValue): RecordResult {
  if (raw === null) return { reason: 'record is empty: no attributes and no elements' };
  if (typeof raw !== 'object' || Array.isArray(raw)) return { reason: 'record has only text: no attributes and no elements' };
  const type = attribute(raw, 'type');
  if (type === null) return { reason: 'record has no type attribute' };
  const time = attribute(raw, 'time');
  if (time === null) return { reason: `${type} record has no time attribute` };
  if (!isRfc3339(time)) return { reason: `${type} record time "${time}" is not an RFC 3339 timestamp` };
  const timeProblem = unstorableTime(time);
  if (timeProblem !== null) return { reason: `${type} record time "${time}" ${timeProblem}` };
  const recordIndex = indexAttribute(raw, type, 'recordIndex');
  if (typeof recordIndex === 'string') return { reason: recordIndex };
  const correlatorIndex = indexAttribute(raw, type, 'correlatorIndex');
  if (typeof correlatorIndex === 'string') return { reason: correlatorIndex };
  let numPreceedingRecordsMissing: number | null = null;
  if (attribute(raw, 'numPreceedingRecordsMissing') !== null) {
    const missing = indexAttribute(raw, type, 'numPreceedingRecordsMissing');
    if (typeof missing === 'string') return { reason: missing };
    if (missing > MAX_MISSING) return { reason: `${type} record numPreceedingRecordsMissing ${missing} is out of range` };
    numPreceedingRecordsMissing = missing;
  }

  const found = findRecordObject(raw, type);
  if (found.problem !== undefined) return { reason: found.problem };
  const object = found.object;
  let callId: string | null = null;
  let callLegId: string | null = null;
  let callCorrelator: string | null = null;
  if (object !== null) {
    callId = object.kind === 'call' ? object.id : textField(object.element, 'call');
    callLegId = object.kind === 'callLeg' ? object.id : textField(object.element, 'callLeg');
    callCorrelator = textField(object.element, 'callCorrelator');
  }
  for (const [name, id] of [
    ['call id', callId],
    ['callLeg id', callLegId],
    ['callCorrelator', callCorrelator],
  ] as const) {
    const problem = id === null ? null : unstorableId(id);
    if (problem !== null) return { reason: `${type} record ${name} ${problem}` };
  }
  // The body check already refuses U+0000 anywhere; this keeps records from other sources storable too.
  const nul = nulCharacterAt(raw);
  if (nul !== null) return { reason: `${type} record has a U+0000 (NUL) character in ${nul}, which cannot be stored` };
  return {
    record: {
      type,
      time,
      recordIndex,
      correlatorIndex,
      numPreceedingRecordsMissing,
      objectKind: object?.kind ?? null,
      objectId: object?.id ?? null,
      callId,
      callLegId,
      callCorrelator,
      raw,
    },
  };
}

function attribute(raw: XmlObject, name: string): string | null {
  const value = raw[`@${name}`];
  return typeof value === 'string' && value !== '' ? value : null;
}

/** A non-negative integer attribute, or the reason it is not one. */
function indexAttribute(raw: XmlObject, type: string, name: string): number | string {
  const value = attribute(raw, name);
  if (value === null) return `${type} record has no ${name} attribute`;
  const number = DIGITS.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number)) return `${type} record ${name} "${value}" is not a non-negative integer`;
  return number;
}
