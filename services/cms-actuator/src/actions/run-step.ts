import { CmsApiError } from '@cms/cms';
import type { CmsWriteJob, OperatorActionJob } from '@cms/queue';
import { type Job, Worker } from 'bullmq';
import { cmsStopwatch, type WriteContext } from '../write-context.ts';
import { completeStep, loadStep, markStepStarted, type StepRow } from './action-store.ts';

/** What a step's body uses to talk to CMS: writes go through the node's write ceiling, reads do not. */
export interface StepIo {
  ctx: WriteContext;
  step: StepRow;
  /** A CMS write (PUT/POST/DELETE): waits for the node's write ceiling, then sends it. */
  write<T>(request: () => Promise<T>): Promise<T>;
  /** A CMS read (GETs do not count against the write ceiling). */
  read<T>(request: () => Promise<T>): Promise<T>;
}

/** A step's work; resolves with what it produced (ids, counts), stored as the step's result. */
export type StepBody = (io: StepIo) => Promise<Record<string, unknown> | null>;

export interface StepOptions {
  /**
   * False for a write that must not be sent twice (a dial-out): a timeout or 5xx may have been carried out, so it
   * fails at once instead of being retried. 503 (CMS did not take it) is always retried.
   */
  retrySafe: boolean;
}

/**
 * Turns a step body into the write job handler of its kind: loads the step, runs it, and stores its outcome (and the
 * action's, once every step has one) with CMS's status and failure reason. A CMS refusal is the action's failure,
 * never the job's: the job completes; only busy CMS (503), held credentials and transient failures put it back.
 */
export function stepHandler(body: StepBody, options: StepOptions) {
  return async function runStep(ctx: WriteContext, job: Job<CmsWriteJob>, _token: string | undefined): Promise<void> {
    const { actionId, step: stepNo, kind } = job.data as OperatorActionJob;
    const step = await loadStep(ctx.db, actionId, stepNo);
    if (step?.status !== 'queued') return; // unknown, or done already (a duplicate job)
    await markStepStarted(ctx.db, actionId, stepNo);
    const attempts = job.attemptsMade + 1;
    let writes = 0;
    let firstWriteAt: Date | null = null;
    const cms = cmsStopwatch();
    const io: StepIo = {
      ctx,
      step,
      read: (request) => cms.timed(request),
      async write(request) {
        // Urgent: the next free place under the ceiling is this write's, not a waiting message's.
        const slot = await ctx.gate.acquireSlot({ urgent: true });
        firstWriteAt ??= new Date();
        writes++;
        try {
          return await cms.timed(request);
        } finally {
          // Failed or not, the write may have reached CMS: its place in the ceiling's window counts from now.
          await slot.answered();
        }
      },
    };
    const base = { callId: step.callId, desiredText: null, version: null, attempts };
    const fields = { node: ctx.node, actionId, step: stepNo, kind, tokenName: step.tokenName, callId: step.callId };
    try {
      const result = await body(io);
      ctx.busy.reset();
      const status = await completeStep(ctx.db, actionId, stepNo, {
        status: 'applied',
        httpStatus: 200,
        failureReason: null,
        failureParameter: null,
        result,
        writes,
        firstWriteAt,
        cmsMs: cms.totalMs,
      });
      await ctx.record(kind, { ...base, status: 'applied', httpStatus: 200, failureReason: null, latencyMs: Math.round(cms.totalMs) });
      ctx.log.info(
        { ...fields, outcome: 'applied', actionStatus: status, writes, cmsMs: Math.round(cms.totalMs), result },
        'operator action step',
      );
    } catch (err) {
      if (!(err instanceof CmsApiError)) throw err; // Postgres away, ...: BullMQ retries the job
      const failure = {
        ...base,
        httpStatus: err.status === 0 ? null : err.status,
        failureReason: err.failureReason,
        latencyMs: Math.round(cms.totalMs),
      };
      if (err.isBusy) {
        // CMS asks us to come back later: the whole node slows down, and the step goes back uncounted.
        const pauseMs = ctx.busy.next();
        await ctx.record(kind, { ...failure, status: 'retrying', metricOutcome: 'busy' });
        await ctx.rateLimit(pauseMs);
        throw Worker.RateLimitError();
      }
      if (err.isAuth || err.isTlsFailure) {
        await ctx.health.markUnhealthy(err);
        await ctx.record(kind, { ...failure, status: 'held' });
        throw Worker.RateLimitError();
      }
      const maxAttempts = job.opts.attempts ?? 1;
      if (options.retrySafe && err.isRetryable && attempts < maxAttempts) {
        await ctx.record(kind, { ...failure, status: 'retrying' });
        throw err; // BullMQ retries after the cmsWrite back-off
      }
      const status = await completeStep(ctx.db, actionId, stepNo, {
        status: 'failed',
        httpStatus: failure.httpStatus,
        failureReason: err.failureReason,
        failureParameter: err.parameter ?? null,
        result: null,
        writes,
        firstWriteAt,
        cmsMs: cms.totalMs,
      });
      await ctx.record(kind, { ...failure, status: 'deadLettered' });
      ctx.log.warn(
        {
          ...fields,
          outcome: 'failed',
          actionStatus: status,
          httpStatus: failure.httpStatus,
          failureReason: err.failureReason,
          parameter: err.parameter,
        },
        'operator action step',
      );
    }
  };
}
