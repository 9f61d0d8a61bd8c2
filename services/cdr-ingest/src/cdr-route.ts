import { CdrParseError, parseCdrBatch } from '@cms/cdr';
import { HttpProblem } from '@cms/http';
import { scrubUrl } from '@cms/observability';
import { type GroupCommitter, type ReceivedCdrBatch, RedisUnavailableError } from '@cms/queue';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ingestTokenCheck } from './auth.ts';
import type { BacklogGauge } from './backlog.ts';
import type { IngestMetrics } from './metrics.ts';

export interface CdrRouteOptions {
  token: string;
  bodyLimitBytes: number;
  maxBacklog: number;
  /** Stores a batch in Redis (grouped with concurrent ones); resolves once it is stored. */
  store: GroupCommitter<ReceivedCdrBatch, unknown>;
  backlog: BacklogGauge;
  metrics: IngestMetrics;
  resolveNode: (pathNode: string | undefined, callBridge: string | null) => string | null;
}

/** Seconds CMS is asked to wait before re-sending when we cannot take the batch now. */
const RETRY_AFTER_SECONDS = '5';

const outcomeByStatus: Record<number, string> = { 400: 'bad_request', 401: 'unauthorized', 413: 'too_large', 503: 'unavailable' };

/** Why a POST was refused, for cdr_ingest_posts_refused_total; set where the refusal is decided. */
const refusalReasons = new WeakMap<FastifyRequest, string>();

/** A 503 that CMS answers by keeping the records and sending them again after Retry-After. */
function unavailable(request: FastifyRequest, reason: string, detail: string): HttpProblem {
  refusalReasons.set(request, reason);
  return new HttpProblem(503, 'Service Unavailable', detail, { headers: { 'Retry-After': RETRY_AFTER_SECONDS } });
}

/**
 * A body over the limit is still read (and thrown away) up to this many times the limit before the 413 is sent: a
 * client that writes its whole body before it reads the answer (most do) would otherwise meet a connection reset
 * instead of the 413. Beyond that, the connection is closed at once rather than read for ever.
 */
const DRAIN_FACTOR = 4;

function tooLarge(limit: number, received: string): HttpProblem {
  return new HttpProblem(
    413,
    'Content Too Large',
    `The body (${received}) is larger than the ingest limit of ${limit} bytes (ingest.bodyLimitBytes / INGEST_BODY_LIMIT_BYTES).`,
  );
}

/**
 * Reads a request body into one Buffer, up to `limit` bytes. A longer body is answered 413 once it has been read to
 * its end (discarding it), so the client hears the 413; one longer than DRAIN_FACTOR × limit is answered at once.
 */
function readBody(
  payload: NodeJS.ReadableStream,
  contentLengthHeader: string | undefined,
  limit: number,
  done: (err: Error | null, body?: Buffer) => void,
): void {
  const drainLimit = limit * DRAIN_FACTOR;
  const declared = contentLengthHeader === undefined ? Number.NaN : Number(contentLengthHeader);
  if (declared > drainLimit) {
    done(tooLarge(limit, `${declared} bytes declared`));
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  let settled = false;
  const finish = (err: Error | null, body?: Buffer) => {
    if (settled) return;
    settled = true;
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onError);
    done(err, body);
  };
  const onData = (chunk: Buffer | string) => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    received += buf.length;
    if (received > drainLimit) return finish(tooLarge(limit, `over ${drainLimit} bytes`));
    // Over the limit: keep reading to the end, keep nothing.
    if (received <= limit) chunks.push(buf);
  };
  const onEnd = () => {
    if (received > limit) return finish(tooLarge(limit, `${received} bytes`));
    finish(null, Buffer.concat(chunks, received));
  };
  const onError = (err: Error & { statusCode?: number }) => {
    if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
    finish(err);
  };
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onError);
  payload.resume();
}

export async function cdrRoutes(app: FastifyInstance, options: CdrRouteOptions): Promise<void> {
  const { metrics } = options;

  // CMS does not document its Content-Type: take every body as raw bytes and parse it as XML regardless.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    readBody(payload, request.headers['content-length'], options.bodyLimitBytes, (err, body) => {
      if (err instanceof HttpProblem) refusalReasons.set(request, 'too_large');
      done(err, body);
    });
  });

  // Authenticate before the body is read, so an unauthenticated sender cannot make us buffer 5 MiB.
  const checkToken = ingestTokenCheck(options.token);
  app.addHook('onRequest', async (request) => {
    checkToken(request);
  });

  app.addHook('onResponse', async (request, reply) => {
    const outcome = reply.statusCode === 200 ? 'accepted' : (outcomeByStatus[reply.statusCode] ?? `status_${reply.statusCode}`);
    // Refusals are logged (an operator needs to see a misconfigured CMS); with the URL's token scrubbed.
    if (reply.statusCode >= 400 && reply.statusCode < 500)
      request.log.warn({ status: reply.statusCode, outcome, url: scrubUrl(request.url) }, 'CDR POST refused');
    metrics.posts.inc({ outcome });
    if (reply.statusCode !== 200) metrics.refused.inc({ reason: refusalReasons.get(request) ?? outcome });
    if (reply.statusCode === 200) metrics.ackSeconds.observe(reply.elapsedTime / 1000);
  });

  const handler = async (request: FastifyRequest, node: string | undefined, body: unknown) => {
    if (!Buffer.isBuffer(body) || body.length === 0) {
      throw new HttpProblem(400, 'Bad Request', 'Empty body: expected a CMS CDR <records> XML document.');
    }
    let batch: ReturnType<typeof parseCdrBatch>;
    try {
      batch = parseCdrBatch(body);
    } catch (err) {
      if (err instanceof CdrParseError) throw new HttpProblem(400, 'Bad Request', err.message);
      throw err;
    }
    metrics.backlog.set(options.backlog.value);
    if (options.backlog.value >= options.maxBacklog) {
      throw unavailable(request, 'backlog', `Backlog of ${options.backlog.value} batches is over ingest.maxBacklog; CMS will re-send.`);
    }
    const resolved = options.resolveNode(node, batch.callBridge);
    const job: ReceivedCdrBatch = { node: resolved, receivedAt: new Date().toISOString(), batch };
    try {
      await options.store.submit(job);
    } catch (err) {
      // Not stored, so not acknowledged: CMS keeps the records and re-sends them. One line and one count per refusal.
      const reason = err instanceof RedisUnavailableError ? 'redis_unavailable' : 'redis_error';
      request.log.warn(
        { reason, node: resolved, session: batch.session, records: batch.records.length, err },
        'could not store batch in Redis: answering 503 with Retry-After',
      );
      throw unavailable(
        request,
        reason,
        reason === 'redis_unavailable'
          ? 'The batch could not be stored: Redis is unreachable. CMS will re-send it.'
          : `The batch could not be stored: Redis refused the write (${(err as Error).message}). CMS will re-send it.`,
      );
    }
    if (batch.records.length) {
      metrics.records.inc({ node: resolved ?? 'unknown' }, batch.records.length);
      metrics.lastRecord.set({ node: resolved ?? 'unknown' }, Date.now() / 1000);
    }
    if (batch.rejected.length) {
      metrics.rejected.inc(batch.rejected.length);
      app.log.warn(
        {
          node: resolved,
          session: batch.session,
          quarantined: batch.rejected.length,
          reasons: batch.rejected.slice(0, 3).map((r) => r.reason),
        },
        'records failed validation: acknowledged into quarantine',
      );
    }
    return { status: 'stored', records: batch.records.length, quarantined: batch.rejected.length };
  };

  const nodeParam = {
    type: 'object',
    properties: { node: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' } },
    required: ['node'],
  } as const;

  app.post('/cdr', async (request) => handler(request, undefined, request.body));
  app.post<{ Params: { node: string } }>('/cdr/:node', { schema: { params: nodeParam } }, async (request) =>
    handler(request, request.params.node, request.body),
  );
  // Cisco Meeting Management registers receivers as .../cdr/<n>/?token=, with a trailing slash.
  app.post<{ Params: { node: string } }>('/cdr/:node/', { schema: { params: nodeParam } }, async (request) =>
    handler(request, request.params.node, request.body),
  );
}
