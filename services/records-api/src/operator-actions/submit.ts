import { createHash } from 'node:crypto';
import type { Config } from '@cms/config';
import { type Database, type OperatorActionKind, operatorActionSteps, operatorActions } from '@cms/db';
import { HttpProblem } from '@cms/http';
import type { Logger } from '@cms/observability';
import {
  type CmsWritesQueue,
  createCmsWritesQueue,
  createRedisConnection,
  enqueueOperatorActionStep,
  type Redis,
  redisReady,
  watchRedisErrors,
} from '@cms/queue';
import { and, eq, sql } from 'drizzle-orm';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../auth.ts';
import { type ActionView, loadAction } from './view.ts';

/** How long a request waits for its action to finish before answering 202 with the action to follow. */
const ANSWER_WAIT_MS = 2000;
const POLL_MS = 20;
/** How long a request waits for Redis before answering 503 (nothing stored). */
const REDIS_WAIT_MS = 1000;

/** The Idempotency-Key header: printable, at most 255 characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

interface ActionStep {
  node: string;
  callId: string | null;
  params: Record<string, unknown>;
}

/** What a route asks for once it has checked the request (nothing is stored before that). */
export interface ActionRequest {
  kind: OperatorActionKind;
  callId: string | null;
  legId: string | null;
  meetingKey: string | null;
  parameters: Record<string, unknown>;
  steps: ActionStep[];
  /** Further changes stored in the same transaction as the action (presenter mode's own row). */
  alsoStore?: (tx: Parameters<Parameters<Database['transaction']>[0]>[0], actionId: number) => Promise<void>;
}

/**
 * Takes operator actions: stores each (the audit row and one step per CMS node), queues its steps on the nodes'
 * write queues, and answers with the outcome when it comes within a short wait, else 202 and the action to follow.
 */
export class ActionDesk {
  readonly #db: Database;
  readonly #log: Logger;
  readonly #redis: Redis;
  readonly #queues = new Map<string, CmsWritesQueue>();

  constructor(config: Config, db: Database, log: Logger) {
    this.#db = db;
    this.#log = log;
    // A producer connection: while Redis is away an action is refused at once (503) instead of hanging.
    this.#redis = watchRedisErrors(log, createRedisConnection(config.redis, 'producer'), 'redis connection (operator actions)');
    for (const node of config.cms.nodes) {
      const queue = createCmsWritesQueue(node.name, { connection: this.#redis, prefix: config.queue.prefix });
      watchRedisErrors(log, queue, `queue ${queue.name}`, { fields: { node: node.name } });
      this.#queues.set(node.name, queue);
    }
  }

  /**
   * A request repeated with the Idempotency-Key of an earlier one (same token) is that action, answered as it
   * stands now; the key with a different request is refused (422). Checked before the request itself, so a retry
   * of an admit that worked is not refused because the participant has left the lobby meanwhile.
   */
  async replay(request: FastifyRequest, reply: FastifyReply): Promise<ActionView | undefined> {
    const key = idempotencyKey(request);
    if (key === undefined) return undefined;
    const principal = request.principal as Principal;
    const [existing] = await this.#db
      .select({ id: operatorActions.id, requestHash: operatorActions.requestHash })
      .from(operatorActions)
      .where(and(eq(operatorActions.tokenName, principal.name), eq(operatorActions.idempotencyKey, key)));
    if (!existing) return undefined;
    return this.#answerExisting(request, reply, existing);
  }

  async #answerExisting(request: FastifyRequest, reply: FastifyReply, existing: { id: number; requestHash: string | null }) {
    if (existing.requestHash !== requestHash(request)) {
      throw new HttpProblem(
        422,
        'Unprocessable Content',
        `Idempotency-Key "${idempotencyKey(request)}" was used for a different request (action ${existing.id}); use a new key for a new request.`,
      );
    }
    reply.header('idempotent-replayed', 'true');
    return this.#answer(reply, existing.id);
  }

  async submit(request: FastifyRequest, reply: FastifyReply, action: ActionRequest): Promise<ActionView> {
    const principal = request.principal as Principal;
    const key = idempotencyKey(request);
    try {
      await redisReady(this.#redis, REDIS_WAIT_MS);
    } catch {
      throw new HttpProblem(503, 'Service Unavailable', 'The write queue (Redis) is unavailable; nothing was done. Try again shortly.', {
        headers: { 'Retry-After': '5' },
      });
    }
    const hash = key === undefined ? null : requestHash(request);
    const id = await this.#db.transaction(async (tx) => {
      const [row] = await tx
        .insert(operatorActions)
        .values({
          tokenName: principal.name,
          role: principal.role,
          kind: action.kind,
          callId: action.callId,
          legId: action.legId,
          meetingKey: action.meetingKey,
          parameters: action.parameters,
          idempotencyKey: key ?? null,
          requestHash: hash,
        })
        .onConflictDoNothing()
        .returning({ id: operatorActions.id });
      if (!row) return undefined; // the same key, committed by a concurrent retry of this request
      await tx
        .insert(operatorActionSteps)
        .values(action.steps.map((step, i) => ({ actionId: row.id, step: i, node: step.node, callId: step.callId, params: step.params })));
      await action.alsoStore?.(tx, row.id);
      return row.id;
    });
    if (id === undefined) {
      const again = await this.replay(request, reply);
      if (again) return again;
      throw new HttpProblem(409, 'Conflict', 'A request with this Idempotency-Key is being taken; try again.');
    }
    this.#log.info(
      {
        actionId: id,
        kind: action.kind,
        tokenName: principal.name,
        role: principal.role,
        callId: action.callId,
        legId: action.legId,
        nodes: action.steps.map((s) => s.node),
        parameters: action.parameters,
      },
      'operator action accepted',
    );
    try {
      for (const [i, step] of action.steps.entries()) {
        const queue = this.#queues.get(step.node) as CmsWritesQueue;
        await enqueueOperatorActionStep(queue, { kind: action.kind, actionId: id, step: i }, this.#redis);
      }
    } catch (err) {
      this.#log.error({ err, actionId: id }, 'operator action not queued');
      await this.#db
        .update(operatorActions)
        .set({ status: 'failed', failureReason: 'queueUnavailable', completedAt: sql`now()` })
        .where(eq(operatorActions.id, id));
      throw new HttpProblem(503, 'Service Unavailable', `Action ${id} could not be queued (Redis unavailable); it is marked failed.`, {
        headers: { 'Retry-After': '5' },
      });
    }
    return this.#answer(reply, id);
  }

  /** The outcome if the action finishes within the short wait (200), else the action as it stands (202). */
  async #answer(reply: FastifyReply, id: number): Promise<ActionView> {
    const deadline = Date.now() + ANSWER_WAIT_MS;
    let view = await loadAction(this.#db, id);
    while (view && view.status === 'queued' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      view = await loadAction(this.#db, id);
    }
    if (!view) throw new HttpProblem(404, 'Not Found', `No action ${id}.`);
    reply.header('location', `/api/v1/actions/${id}`);
    reply.code(view.status === 'queued' ? 202 : 200);
    if (view.status !== 'queued') {
      this.#log.info(
        { actionId: id, kind: view.kind, status: view.status, failureDetails: view.failureDetails },
        'operator action answered',
      );
    }
    return view;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((queue) => queue.close()));
    this.#redis.disconnect();
  }
}

function idempotencyKey(request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key'];
  if (value === undefined) return undefined;
  const key = Array.isArray(value) ? value[0] : value;
  if (key === undefined || !IDEMPOTENCY_KEY.test(key)) {
    throw new HttpProblem(400, 'Bad Request', 'Idempotency-Key must be 1 to 255 printable ASCII characters without spaces.');
  }
  return key;
}

/** What was asked: method, path and body. A retry must ask the same. */
function requestHash(request: FastifyRequest): string {
  const path = request.url.split('?')[0];
  return createHash('sha256')
    .update(`${request.method} ${path}\n${JSON.stringify(request.body ?? null)}`)
    .digest('hex');
}
