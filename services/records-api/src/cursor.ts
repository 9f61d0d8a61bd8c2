import { HttpProblem } from '@cms/http';
import { isRfc3339 } from './time.ts';

/**
 * Opaque keyset cursors: base64url of a small JSON object naming the endpoint and the last row's sort key.
 * Nothing secret is in them (every row is readable anyway), so they are validated rather than signed: a
 * tampered cursor must answer 400, never reach SQL as something Postgres rejects.
 */
export type SortOrder = 'asc' | 'desc';

export interface RecordsCursor {
  order: SortOrder;
  /** cdr_records.id of the last record on the page. */
  id: number;
}

export interface CallsCursor {
  /** startedAt of the last call on the page (RFC 3339), null for calls not started yet (sorted last). */
  startedAt: string | null;
  id: string;
}

export interface MeetingsCursor {
  /** meetings.updatedAt of the last meeting on the page (RFC 3339). */
  updatedAt: string;
  meetingKey: string;
}

const VERSION = 1;
const MAX_ID_LENGTH = 256;

/** An id as the cursor's query will send it: text Postgres stores (no NUL, which it refuses), as long as a path id may be. */
function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH && !value.includes('\0');
}

function encode(payload: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify({ v: VERSION, ...payload }), 'utf8').toString('base64url');
}

function invalid(): HttpProblem {
  return new HttpProblem(
    400,
    'Bad Request',
    'Invalid request: querystring/cursor is not a cursor this endpoint issued; send the nextCursor of a previous answer unchanged, or drop it to start from the first page.',
  );
}

function decode(text: string, kind: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid();
  const payload = parsed as Record<string, unknown>;
  if (payload.v !== VERSION || payload.k !== kind) throw invalid();
  return payload;
}

export function encodeRecordsCursor(cursor: RecordsCursor): string {
  return encode({ k: 'records', o: cursor.order, id: cursor.id });
}

/** The cursor's order must match the request's: keyset positions only make sense in the direction they were taken. */
export function decodeRecordsCursor(text: string, order: SortOrder): RecordsCursor {
  const payload = decode(text, 'records');
  const { o, id } = payload;
  if ((o !== 'asc' && o !== 'desc') || typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw invalid();
  if (o !== order) {
    throw new HttpProblem(
      400,
      'Bad Request',
      `Invalid request: querystring/cursor was issued for order=${o}; send order=${o} with it, or drop the cursor to start again.`,
    );
  }
  return { order: o, id };
}

export function encodeCallsCursor(cursor: CallsCursor): string {
  return encode({ k: 'calls', s: cursor.startedAt, id: cursor.id });
}

export function decodeCallsCursor(text: string): CallsCursor {
  const { s, id } = decode(text, 'calls');
  if (!isId(id)) throw invalid();
  if (s !== null && (typeof s !== 'string' || !isRfc3339(s))) throw invalid();
  return { startedAt: s, id };
}

export function encodeMeetingsCursor(cursor: MeetingsCursor): string {
  return encode({ k: 'meetings', u: cursor.updatedAt, m: cursor.meetingKey });
}

export function decodeMeetingsCursor(text: string): MeetingsCursor {
  const { u, m } = decode(text, 'meetings');
  if (!isId(m)) throw invalid();
  if (typeof u !== 'string' || !isRfc3339(u)) throw invalid();
  return { updatedAt: u, meetingKey: m };
}
