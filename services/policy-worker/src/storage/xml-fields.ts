import type { XmlObject, XmlValue } from '@cms/cdr';

/** Field readers for xmltodict-style CDR objects. CMS sends text; these convert only where a column needs it. */

export function childObject(raw: XmlObject, kind: string): XmlObject | null {
  const value = raw[kind];
  return value && typeof value === 'object' && !Array.isArray(value) ? value : null;
}

export function text(obj: XmlObject | null, key: string): string | null {
  const value: XmlValue | undefined = obj?.[key];
  if (typeof value === 'string') return value === '' ? null : value;
  if (value && typeof value === 'object' && !Array.isArray(value) && typeof value['#text'] === 'string') return value['#text'];
  return null;
}

export function has(obj: XmlObject | null, key: string): boolean {
  return obj !== null && Object.hasOwn(obj, key);
}

export function bool(obj: XmlObject | null, key: string): boolean | null {
  const value = text(obj, key);
  if (value === 'true') return true;
  if (value === 'false') return false;
  return null;
}

export function int(obj: XmlObject | null, key: string): number | null {
  const value = text(obj, key);
  if (value === null || !/^-?\d+$/.test(value)) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) && Math.abs(n) <= 2_147_483_647 ? n : null;
}
