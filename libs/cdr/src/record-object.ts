import type { CdrObjectKind, XmlObject, XmlValue } from './types.ts';

/** The child element each documented record type describes. */
export const OBJECT_KIND_BY_TYPE: ReadonlyMap<string, CdrObjectKind> = new Map<string, CdrObjectKind>([
  ['callStart', 'call'],
  ['callEnd', 'call'],
  ['callLegStart', 'callLeg'],
  ['callLegUpdate', 'callLeg'],
  ['callLegEnd', 'callLeg'],
  ['recordingStart', 'recording'],
  ['recordingEnd', 'recording'],
  ['streamingStart', 'streaming'],
  ['streamingEnd', 'streaming'],
]);

const OBJECT_KINDS: readonly CdrObjectKind[] = ['call', 'callLeg', 'recording', 'streaming'];

interface RecordObject {
  kind: CdrObjectKind;
  id: string;
  /** The child element in xmltodict form (always an object: it has at least the "@id" attribute). */
  element: XmlObject;
}

export type RecordObjectResult = { object: RecordObject | null; problem?: undefined } | { object?: undefined; problem: string };

/**
 * The `<call id>`, `<callLeg id>`, `<recording id>` or `<streaming id>` a record is about. Documented types
 * must have theirs; for types CMS may add later, the first of these elements that has an id, if any.
 */
export function findRecordObject(record: XmlObject, type: string): RecordObjectResult {
  const expected = OBJECT_KIND_BY_TYPE.get(type);
  if (expected === undefined) {
    for (const key in record) {
      const kind = key as CdrObjectKind;
      if (!OBJECT_KINDS.includes(kind)) continue;
      const id = elementId(record[key]!);
      if (id !== null) return { object: { kind, id, element: record[key] as XmlObject } };
    }
    return { object: null };
  }
  const element = Object.hasOwn(record, expected) ? record[expected]! : undefined;
  if (element === undefined) return { problem: `${type} record has no <${expected}> element` };
  if (Array.isArray(element)) return { problem: `${type} record has ${element.length} <${expected}> elements, expected one` };
  const id = elementId(element);
  if (id === null) return { problem: `<${expected}> in ${type} record has no id attribute` };
  return { object: { kind: expected, id, element: element as XmlObject } };
}

function elementId(element: XmlValue): string | null {
  if (element === null || typeof element !== 'object' || Array.isArray(element)) return null;
  const id = element['@id'];
  return typeof id === 'string' && id !== '' ? id : null;
}

/** A text field of the record's element, e.g. `<call>` in a callLeg record; null when absent, empty or not plain text. */
export function textField(element: XmlObject, name: string): string | null {
  const value = Object.hasOwn(element, name) ? element[name] : undefined;
  return typeof value === 'string' ? value : null;
}
