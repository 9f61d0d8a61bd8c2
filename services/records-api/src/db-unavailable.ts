import { HttpProblem } from '@cms/http';

/**
 * Errors that mean "Postgres cannot be reached right now", not "this request is wrong": the client should
 * retry later (503 + Retry-After), and an operator reading the log sees an outage, not a bug.
 */

/** Seconds a client is told to wait; about as long as a Postgres restart or a failover takes. */
const RETRY_AFTER_SECONDS = 5;

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ETIMEDOUT: 'connection timed out',
  ECONNABORTED: 'connection aborted',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
};

/** SQLSTATEs Postgres answers while it cannot serve anyone (class 08, connection exceptions, is matched too). */
const SQLSTATES: Record<string, string> = {
  '57P01': 'Postgres is shutting down (57P01 admin_shutdown)',
  '57P02': 'Postgres crashed (57P02 crash_shutdown)',
  '57P03': 'Postgres is starting up or cannot accept connections now (57P03 cannot_connect_now)',
  '53300': 'Postgres has no connection slot free (53300 too_many_connections)',
};

/** pg and pg-pool raise these as plain Errors without a code. */
const MESSAGES: [RegExp, string][] = [
  [/^Connection terminated due to connection timeout/, 'no connection within the connect timeout'],
  [/^timeout exceeded when trying to connect/, 'every pooled connection is busy and none came free within the connect timeout'],
  [/^Connection terminated/, 'the connection was cut'],
  [/^Client has encountered a connection error and is not queryable/, 'the connection was cut'],
  [/^Cannot use a pool after calling end on the pool/, 'the service is shutting down'],
];

function reasonOf(error: unknown, depth: number): string | undefined {
  if (typeof error !== 'object' || error === null || depth > 5) return undefined;
  const { code, message, cause, errors } = error as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string') {
    if (NETWORK_CODES[code]) return `${NETWORK_CODES[code]}, ${code}`;
    if (SQLSTATES[code]) return SQLSTATES[code];
    if (/^08[0-9A-Z]{3}$/.test(code)) return `connection exception (SQLSTATE ${code})`;
  }
  if (typeof message === 'string') {
    for (const [pattern, reason] of MESSAGES) if (pattern.test(message)) return reason;
  }
  // drizzle wraps the driver's error in `cause`; a connect to a host with several addresses fails with an AggregateError.
  const fromCause = reasonOf(cause, depth + 1);
  if (fromCause) return fromCause;
  if (Array.isArray(errors)) {
    for (const inner of errors) {
      const reason = reasonOf(inner, depth + 1);
      if (reason) return reason;
    }
  }
  return undefined;
}

/** Why Postgres is unavailable, when `error` says it is; undefined for every other error. */
function databaseUnavailableReason(error: unknown): string | undefined {
  return reasonOf(error, 0);
}

/** The 503 for an error that says Postgres is unavailable; undefined for every other error. */
export function databaseUnavailable(error: unknown): HttpProblem | undefined {
  const reason = databaseUnavailableReason(error);
  if (reason === undefined) return undefined;
  return new HttpProblem(
    503,
    'Service Unavailable',
    `The database is unavailable (${reason}); nothing was changed. Retry in ${RETRY_AFTER_SECONDS} s.`,
    { headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) } },
  );
}
