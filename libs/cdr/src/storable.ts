/**
 * What Postgres refuses to store although the XML and RFC 3339 allow it. A record the parser accepts goes into
 * a transaction with its neighbours; if Postgres then refused it, the whole batch would fail. So the parser
 * turns these into ordinary rejected records (quarantined with the reason) instead.
 */
import type { XmlValue } from './types.ts';

const TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * Postgres's timestamptz input takes UTC offsets up to 15:59 (RFC 3339 allows 23:59): "time zone displacement
 * out of range" beyond that.
 */
export const MAX_OFFSET_HOURS = 15;
/** Fractional digits kept: Postgres rounds to microseconds and refuses very long inputs; RFC 3339 producers send at most nanoseconds. */
const MAX_FRACTION_DIGITS = 9;
/**
 * Longest id (call, callLeg, callCorrelator) in bytes. Ids are indexed, and a btree index entry holds at most
 * about 2.7 kB ("index row size exceeds maximum"); CMS sends 36-character UUIDs.
 */
export const MAX_ID_BYTES = 1024;

/**
 * Why Postgres would refuse this time, or null when it stores it. Only for values that passed isRfc3339.
 * Every 4-digit year is storable: with any offset up to 15:59, years 1 to 9999 stay within timestamptz's range
 * (4713 BC to 294276 AD).
 */
export function unstorableTime(value: string): string | null {
  const match = TIME.exec(value);
  if (match === null) return 'is not an RFC 3339 timestamp';
  const [, second, fraction = '', sign, offsetHour] = match;
  if (offsetHour !== undefined && Number(offsetHour) > MAX_OFFSET_HOURS) {
    return `has a UTC offset of ${sign}${offsetHour}:${match[5]}, beyond the ±${MAX_OFFSET_HOURS}:59 that can be stored`;
  }
  if (fraction.length > MAX_FRACTION_DIGITS) {
    return `has ${fraction.length} fractional digits; at most ${MAX_FRACTION_DIGITS} (nanoseconds) are accepted`;
  }
  // Postgres takes a leap second only as a whole second (60.000000 rolls over into the next minute).
  if (second === '60' && /[1-9]/.test(fraction)) return 'is a leap second with a fraction, which cannot be stored';
  return null;
}

/** Where in a record's xmltodict value a U+0000 appears (Postgres text and jsonb cannot hold it), or null. */
export function nulCharacterAt(value: XmlValue): string | null {
  // Every record passes through here, and almost none has one: look first, and build the path only when found.
  return hasNul(value) ? pathToNul(value, '') : null;
}

function hasNul(value: XmlValue): boolean {
  if (value === null) return false;
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(hasNul);
  for (const key in value) if (key.includes('\u0000') || hasNul(value[key]!)) return true;
  return false;
}

function pathToNul(value: XmlValue, path: string): string | null {
  if (value === null) return null;
  if (typeof value === 'string') return value.includes('\u0000') ? path || 'the record' : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = pathToNul(value[i]!, `${path}[${i}]`);
      if (found !== null) return found;
    }
    return null;
  }
  for (const key in value) {
    const at = path ? `${path}.${key}` : key;
    if (key.includes('\u0000')) return `the name of ${JSON.stringify(at)}`;
    const found = pathToNul(value[key]!, at);
    if (found !== null) return found;
  }
  return null;
}

/** Why an id cannot be stored (too long to index), or null. */
export function unstorableId(value: string): string | null {
  const bytes = Buffer.byteLength(value, 'utf8');
  return bytes > MAX_ID_BYTES ? `is ${bytes} bytes long; ids are at most ${MAX_ID_BYTES} bytes (CMS sends 36-character UUIDs)` : null;
}
