import { CdrParseError, parseCdrBatch } from '@cms/cdr';
import { HttpProblem } from '@cms/http';
import { scrubUrl } from '@cms/observability';
import type { CdrBatchJob, GroupCommitter } from '@cms/queue';
import type { FastifyInstance } from 'fastify';
import { checkIngestToken } from './auth.ts';
import type { BacklogGauge } from './backlog.ts';
import type { IngestMetrics } from './metrics.ts';

export interface CdrRouteOptions {
  token: string;
  bodyLimitBytes: number;
  maxBacklog: number;
  /** Stores a batch in Redis (grouped with concurrent ones); resolves once it is stored. */
  store: GroupCommitter<CdrBatchJob, unknown>;
  backlog: BacklogGauge;
  metrics: IngestMetrics;
  resolveNode: (pathNode: string | undefined, callBridge: string | null) => string | null;
}

/** Seconds CMS is asked to wait before re-sending when we cannot take the batch now. */
const RETRY_AFTER_SECONDS = '5';

const outcomeByStatus: Record<number, string> = { 400: 'bad_request', 401: 'unauthorized', 413: 'too_large', 503: 'unavailable' };

export async function cdrRoutes(app: FastifyInstance, options: CdrRouteOptions): Promise<void> {
  const { metrics } = options;

  // CMS does not document its Content-Type: take every body as raw bytes and parse it as XML regardless.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: options.bodyLimitBytes }, (_req, body, done) => done(null, body));

  // Authenticate before the body is read, so an unauthenticated sender cannot make us buffer 5 MiB.
  app.addHook('onRequest', async (request) => {
    checkIngestToken(request, options.token);
  });

  app.addHook('onResponse', async (request, reply) => {
    const outcome = reply.statusCode === 200 ? 'accepted' : (outcomeByStatus[reply.statusCode] ?? `status_${reply.statusCode}`);
    // Refusals are logged (an operator needs to see a misconfigured CMS); with the URL's token scrubbed.
    if (reply.statusCode >= 400 && reply.statusCode < 500)
      request.log.warn({ status: reply.statusCode, outcome, url: scrubUrl(request.url) }, 'CDR POST refused');
    metrics.posts.inc({ outcome });
    if (reply.statusCode === 200) metrics.ackSeconds.observe(reply.elapsedTime / 1000);
  });

  const handler = async (node: string | undefined, body: unknown) => {
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
      throw new HttpProblem(
        503,
        'Service Unavailable',
        `Backlog of ${options.backlog.value} batches is over ingest.maxBacklog; CMS will re-send.`,
        {
          headers: { 'Retry-After': RETRY_AFTER_SECONDS },
        },
      );
    }
    const resolved = options.resolveNode(node, batch.callBridge);
    const job: CdrBatchJob = { node: resolved, receivedAt: new Date().toISOString(), batch };
    try {
      await options.store.submit(job);
    } catch (err) {
      app.log.warn({ err: (err as Error).message }, 'could not store batch in Redis: answering 503');
      throw new HttpProblem(503, 'Service Unavailable', 'The batch could not be stored (Redis unreachable); CMS will re-send it.', {
        headers: { 'Retry-After': RETRY_AFTER_SECONDS },
      });
    }
    if (batch.records.length) metrics.records.inc({ node: resolved ?? 'unknown' }, batch.records.length);
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

  app.post('/cdr', async (request) => handler(undefined, request.body));
  app.post<{ Params: { node: string } }>('/cdr/:node', { schema: { params: nodeParam } }, async (request) =>
    handler(request.params.node, request.body),
  );
  // Cisco Meeting Management registers receivers as .../cdr/<n>/?token=, with a trailing slash.
  app.post<{ Params: { node: string } }>('/cdr/:node/', { schema: { params: nodeParam } }, async (request) =>
    handler(request.params.node, request.body),
  );
}
