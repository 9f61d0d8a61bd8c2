import { pg } from '@cms/db';

/**
 * What a failed commit means for the batch, decided from Postgres's SQLSTATE (or the lack of one):
 * - `unavailable`: Postgres cannot be reached or is restarting. Nothing can be stored until it is back; the
 *   worker holds the batches and retries with back-off (see outage.ts).
 * - `refused`: Postgres refused a value (SQLSTATE class 22 data exception, 23 integrity violation, 54 program
 *   limit such as an index entry too large). The same data fails the same way however often it is retried, so
 *   the batch is stored record by record and only the refused records are quarantined (refused-records.ts).
 * - `transient`: a conflict with other transactions (40001 serialization, 40P01 deadlock, 55P03 lock, a unique
 *   violation from a concurrent insert), resources (53), an operator or system intervention (57, 58): the
 *   batch fails and the queue retries it later with back-off.
 * - `other`: anything else (42 syntax or schema errors from a half-done migration, a bug). Retried by the queue
 *   like `transient`: quarantining records for a fault of ours would be wrong.
 */
export type FailureKind = 'unavailable' | 'refused' | 'transient' | 'other';

/** Node socket errors that mean "no usable connection to the server". */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** What node-postgres says (without a code) when a connection broke or could not be made in time. */
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'connection error and is not queryable',
  'timeout exceeded when trying to connect',
  'Connection terminated due to connection timeout',
];

/** The error Postgres answered with, found through the causes drizzle and others wrap it in. */
function postgresError(err: unknown): pg.DatabaseError | undefined {
  for (const e of causes(err)) if (e instanceof pg.DatabaseError) return e;
  return undefined;
}

export function classifyFailure(err: unknown): FailureKind {
  const answer = postgresError(err);
  if (answer) {
    const code = answer.code ?? '';
    const group = code.slice(0, 2);
    // 08: connection exception; 57P01-57P03: shut down or not accepting connections yet; 53300: too many connections.
    if (group === '08' || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return 'unavailable';
    if (code === '23505') return 'transient';
    if (group === '22' || group === '23' || group === '54') return 'refused';
    if (group === '40' || group === '53' || group === '55' || group === '57' || group === '58') return 'transient';
    return 'other';
  }
  for (const e of causes(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_CODES.has(code)) return 'unavailable';
    if (CONNECTION_MESSAGES.some((m) => e.message.includes(m))) return 'unavailable';
    // Node's connection attempts to several addresses fail with an AggregateError of socket errors.
    if (e instanceof AggregateError && e.errors.some((inner) => classifyFailure(inner) === 'unavailable')) return 'unavailable';
  }
  return 'other';
}

/**
 * Postgres aborted the transaction so that another could go on (40P01 deadlock, 40001 serialization failure): running
 * it again at once succeeds, where the job's back-off would hold its level decisions for a second or more.
 */
function abortedForAnother(err: unknown): boolean {
  const code = postgresError(err)?.code;
  return code === '40P01' || code === '40001';
}

/** Runs `work` (one transaction) again at once, up to `attempts` times in all, while Postgres aborts it for another. */
export async function againIfAbortedForAnother<T>(work: () => Promise<T>, onAgain: (err: unknown) => void, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= attempts || !abortedForAnother(err)) throw err;
      onAgain(err);
    }
  }
}

/** One line saying what Postgres answered: message, detail and SQLSTATE; otherwise the innermost message. */
export function describeFailure(err: unknown): string {
  const answer = postgresError(err);
  if (answer) return `${answer.message}${answer.detail ? ` (${answer.detail})` : ''} [SQLSTATE ${answer.code}]`;
  const chain = [...causes(err)];
  // drizzle's own message carries the whole query and its parameters: the cause says what went wrong.
  return (chain.at(-1)?.message ?? String(err)).split('\n')[0]!;
}

function* causes(err: unknown): Generator<Error> {
  let current: unknown = err;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    yield current;
    current = (current as Error & { cause?: unknown }).cause;
  }
}
