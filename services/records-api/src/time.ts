/**
 * Timestamps leave Postgres as text ("2015-07-23 07:32:55+00", drizzle's string mode, lossless to the
 * microsecond). The API answers RFC 3339 ("2015-07-23T07:32:55Z") without rounding through Date.
 */
const PG_TIMESTAMPTZ = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?|Z)$/i;

export function toRfc3339(value: string): string;
export function toRfc3339(value: string | null): string | null;
export function toRfc3339(value: string | null): string | null {
  if (value === null) return null;
  const m = PG_TIMESTAMPTZ.exec(value);
  // Anything else ("infinity", BC dates) is passed on as Postgres wrote it rather than guessed at.
  if (!m) return value;
  const [, date, time, fraction = '', sign, hours, minutes = '00', seconds] = m;
  const base = `${date}T${time}${fraction}`;
  if (sign === undefined || (hours === '00' && minutes === '00' && (seconds === undefined || seconds === '00'))) return `${base}Z`;
  return `${base}${sign}${hours}:${minutes}`;
}

const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d{1,9})?([Zz]|([+-])(\d\d):(\d\d))$/;

/**
 * True when `value` is an RFC 3339 timestamp Postgres will accept: a real calendar date from year 1 (Postgres
 * has no year 0; four digits stop at 9999), a valid clock, and a UTC offset within Postgres's ±15:59.
 */
export function isRfc3339(value: string): boolean {
  const m = RFC3339.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (year < 1) return false;
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0 to 99 as 1900 to 1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return false;
  if (hour > 23 || minute > 59 || second > 59) return false;
  if (m[9] !== undefined && (Number(m[10]) > 15 || Number(m[11]) > 59)) return false;
  return true;
}
