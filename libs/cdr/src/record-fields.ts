import { findRecordObject } from './record-object.ts';
import type { CdrObjectKind, XmlObject, XmlValue } from './types.ts';
import { setOwn } from './xmltodict.ts';

export interface RecordFields {
  objectKind: CdrObjectKind | null;
  objectId: string | null;
  /**
   * The record element's fields under Cisco's names: `<callLeg id>`'s children for a callLeg record, and so on.
   * Attributes lose their "@" (unless a child element has the same name); `alarm` is always an array of
   * `{ type, durationPercentage }`. For a record with no call/callLeg/recording/streaming element (a type from a
   * later CMS release), the record's own child elements.
   */
  fields: XmlObject;
}

/** A stored record's `raw` (xmltodict form) as an API would present it. Pure: `raw` is not modified. */
export function recordFields(raw: XmlObject): RecordFields {
  const type = typeof raw['@type'] === 'string' ? raw['@type'] : '';
  const object = findRecordObject(raw, type).object ?? null;
  if (object === null) {
    const fields: XmlObject = {};
    for (const key in raw) if (!key.startsWith('@')) setOwn(fields, key, fieldValue(raw, key));
    return { objectKind: null, objectId: null, fields };
  }
  const fields: XmlObject = {};
  for (const key in object.element) {
    if (key === '@id') continue;
    setOwn(fields, fieldName(object.element, key), fieldValue(object.element, key));
  }
  return { objectKind: object.kind, objectId: object.id, fields };
}

function fieldName(element: XmlObject, key: string): string {
  if (!key.startsWith('@')) return key;
  const name = key.slice(1);
  return Object.hasOwn(element, name) ? key : name;
}

function fieldValue(element: XmlObject, key: string): XmlValue {
  const value = element[key]!;
  if (key === 'alarm') return (Array.isArray(value) ? value : [value]).map(alarm);
  return plain(value);
}

/** `<alarm type=".." durationPercentage=".."/>` with both keys always present. */
function alarm(value: XmlValue): XmlObject {
  const object = value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
  const result: XmlObject = { type: textOf(object['@type']), durationPercentage: textOf(object['@durationPercentage']) };
  for (const key in object) {
    if (key === '@type' || key === '@durationPercentage') continue;
    setOwn(result, fieldName(object, key), plain(object[key]!));
  }
  return result;
}

function textOf(value: XmlValue | undefined): string | null {
  return typeof value === 'string' ? value : null;
}

/** A copy with attribute keys stripped of "@". */
function plain(value: XmlValue): XmlValue {
  if (value === null || typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(plain);
  const result: XmlObject = {};
  for (const key in value) setOwn(result, fieldName(value, key), plain(value[key]!));
  return result;
}
