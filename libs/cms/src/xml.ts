import { XMLParser } from 'fast-xml-parser';

/** A CMS API object as text: CMS values are kept as sent (leading zeros, "true", "permanent"), never coerced. */
export type CmsValue = string | CmsObject | CmsValue[];
export interface CmsObject {
  [key: string]: CmsValue | undefined;
}

const ATTR = '@_';

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: ATTR,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  htmlEntities: false,
});

/** Parses an API answer to `{ rootName: content }`; an empty body gives `{}`. */
export function parseCmsXml(xml: string): CmsObject {
  if (xml.trim() === '') return {};
  return flatten(parser.parse(xml) as Record<string, unknown>) as CmsObject;
}

/**
 * Attributes become plain keys (`@_id` -> `id`, `@_total` -> `total`) unless an element of the same name exists,
 * and `?xml` declarations are dropped, so callers read `call.id` and `call.messageText` alike.
 */
function flatten(value: unknown): CmsValue {
  if (Array.isArray(value)) return value.map(flatten);
  if (value === null || value === undefined) return '';
  if (typeof value !== 'object') return String(value);
  const out: CmsObject = {};
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (key === '?xml') continue;
    if (key.startsWith(ATTR)) {
      const name = key.slice(ATTR.length);
      if (!(name in (value as Record<string, unknown>))) out[name] = String(child);
      continue;
    }
    out[key === '#text' ? 'text' : key] = flatten(child);
  }
  return out;
}

/** The one root element's content: `<call id="x">...</call>` -> `{ id: 'x', ... }`. */
export function rootObject(doc: CmsObject, root: string): CmsObject | undefined {
  const value = doc[root];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return {};
  if (Array.isArray(value)) return undefined;
  return value;
}

/** Children of a collection element, always as a list (fast-xml-parser gives a single child as an object). */
export function children(collection: CmsObject, name: string): CmsObject[] {
  const value = collection[name];
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((item) => (typeof item === 'string' ? {} : Array.isArray(item) ? {} : item));
}

/** `<failureDetails><callDoesNotExist /></failureDetails>` -> { reason: 'callDoesNotExist' }. */
export function failureDetails(xml: string): { reason: string; parameter?: string } | null {
  let doc: CmsObject;
  try {
    doc = parseCmsXml(xml);
  } catch {
    return null;
  }
  const details = doc.failureDetails;
  if (details === undefined || typeof details === 'string' || Array.isArray(details)) return null;
  const reason = Object.keys(details)[0];
  if (!reason) return null;
  const inner = details[reason];
  const parameter =
    inner && typeof inner === 'object' && !Array.isArray(inner) && typeof inner.parameter === 'string' ? inner.parameter : undefined;
  return parameter ? { reason, parameter } : { reason };
}
