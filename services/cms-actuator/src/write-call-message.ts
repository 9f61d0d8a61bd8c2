import { CmsApiError, callMessageUpdate, callShowsMessage } from '@cms/cms';
import { CMS_WRITE_ATTEMPTS, type CmsWriteJob, enqueueCallMessageWrite } from '@cms/queue';
import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq';
import { type DesiredRow, loadDesired, markApplied, markCallEnded, markDeadLettered } from './desired-state.ts';
import { cmsStopwatch, type WriteContext, type WriteOutcome } from './write-context.ts';

type CallMessageJob = Extract<CmsWriteJob, { kind: 'callMessage' }>;

/**
 * Makes a call show its LATEST desired message. The job carries only the call id: whatever version is desired
 * when the job runs is the one written, so any number of queued changes cost one write.
 *
 * The GET before the PUT is deliberate (sent with the desired-state read, not after it): GETs do not count against
 * the write ceiling, and it saves a write whenever CMS already shows the message (a level that went 3 -> 2 -> 3
 * before we got to it, a replica that crashed between its PUT and its bookkeeping, a restart over running calls),
 * and it finds ended calls (404) without spending a write on them.
 */
export async function writeCallMessage(ctx: WriteContext, job: Job<CmsWriteJob>, token: string | undefined): Promise<void> {
  const { callId } = job.data as CallMessageJob;
  const attempts = job.attemptsMade + 1;
  // Where a write's time goes (debug log, read by bench/policy.ts): queued since the job was added, then each step.
  const startedAt = performance.now();
  const stamps: Record<string, number> = {
    addedAt: job.timestamp,
    startedAt: Date.now(),
    queuedMs: Math.max(0, Date.now() - job.timestamp),
  };
  const lap = (name: string, since: number) => {
    stamps[name] = Math.round((performance.now() - since) * 10) / 10;
    return performance.now();
  };
  const cms = cmsStopwatch();
  // The GET goes out together with the desired-state read, so a write waits for the slower of the two instead of
  // both in turn (measured: each took a few ms on an idle machine, tens to hundreds under load). When the read
  // says there is nothing to write, its answer (or failure) is simply not used: GETs do not count against the
  // write ceiling.
  const shown = cms.timed(() => ctx.client.getCall(callId));
  shown.catch(() => undefined); // handled where it is awaited, or deliberately unused
  const desired = await loadDesired(ctx.db, callId);
  let mark = lap('loadMs', startedAt);
  if (!desired) return; // no desired state (deleted): nothing to make CMS match
  if (desired.node !== null && desired.node !== ctx.node) {
    ctx.log.warn({ node: ctx.node, callId, desiredNode: desired.node }, 'write job on the queue of another node than its call: ignored');
    return;
  }
  if (desired.appliedVersion !== null && desired.appliedVersion >= desired.version) return; // already done (a follow-up job)
  const base = { callId, desiredText: desired.messageText, version: desired.version, attempts };
  if (desired.callEndedAt !== null) {
    await ctx.record('callMessage', { ...base, status: 'callEnded', httpStatus: null, failureReason: 'callEndedInCdrs', latencyMs: null });
    await markCallEnded(ctx.db, callId);
    return;
  }
  const sinceLastWriteMs = sinceLastWrite(ctx, desired);
  if (sinceLastWriteMs !== null && sinceLastWriteMs < ctx.callMessageMinIntervalMs && !overstatesLevel(ctx, desired)) {
    // Written a moment ago: come back when the interval is over. While this job is delayed, further changes are
    // folded into it, so it then writes whatever is latest. Not an attempt.
    await job.moveToDelayed(Date.now() + Math.ceil(ctx.callMessageMinIntervalMs - sinceLastWriteMs), token);
    throw new DelayedError();
  }

  try {
    const call = await shown;
    mark = lap('getMs', mark);
    if (callShowsMessage(call, desired)) {
      ctx.busy.reset();
      await finish(ctx, desired, 'unchanged', {
        ...base,
        status: 'unchanged',
        httpStatus: 200,
        failureReason: null,
        latencyMs: Math.round(cms.totalMs),
      });
      return;
    }
    const slot = await ctx.gate.acquireSlot();
    mark = lap('gateMs', mark);
    try {
      await cms.timed(() => ctx.client.updateCall(callId, callMessageUpdate(desired)));
      lap('putMs', mark);
      rememberAnswer(ctx, callId, desired.version);
    } finally {
      // Failed or not, the PUT may have reached CMS: its place in the ceiling's window counts from now.
      await slot.answered();
    }
    ctx.log.debug({ node: ctx.node, callId, version: desired.version, ...stamps }, 'cms write timing');
    ctx.busy.reset();
    await finish(ctx, desired, 'applied', {
      ...base,
      status: 'applied',
      httpStatus: 200,
      failureReason: null,
      latencyMs: Math.round(cms.totalMs),
    });
  } catch (err) {
    if (!(err instanceof CmsApiError)) throw err;
    await handleFailure(ctx, job, desired, err, { ...base, latencyMs: Math.round(cms.totalMs) });
  }
}

/**
 * Milliseconds since the call's last message write. When that write was this replica's (same version), from CMS's
 * answer to it; otherwise (another replica's, or before a restart) from its stored row, a little later than the
 * answer, so the interval is never cut short.
 */
function sinceLastWrite(ctx: WriteContext, desired: DesiredRow): number | null {
  const mine = ctx.lastAnswers.get(desired.callId);
  if (mine && mine.version === desired.lastWriteVersion) return Date.now() - mine.at;
  return desired.sinceLastWriteMs;
}

/**
 * Whether the call's last write shows a more secure level (a lower number) than its meeting has now. Such a change
 * is written at once, not after the interval: the interval is there so that a message does not flicker, and holding
 * a level better than the truth on screen for it is the worse of the two. Measured (bench/results/policy.md): a lobby
 * guest admitted by a participant who joined on another Call Bridge is reported in that bridge's own POST and decided
 * 20-40 ms after the join, so level 1 was written and the level 3 that followed waited for the interval. Improvements
 * (and the cleared message) still wait and fold, so a level can only step up at once (at most twice, 1 -> 2 -> 3)
 * before the interval holds it again. A text that is not one of the policy's messages (or is shared by two levels)
 * says nothing about the level: the change waits as before.
 */
function overstatesLevel(ctx: WriteContext, desired: DesiredRow): boolean {
  if (desired.level === null || desired.lastWriteText === null) return false;
  const shownLevel = ctx.messageLevels.get(desired.lastWriteText);
  return shownLevel !== undefined && shownLevel < desired.level;
}

/**
 * The policy's message texts and the level each shows. A text two levels share is left out (it tells neither), and
 * so is an empty one (it is also the cleared message's).
 */
export function levelsOfMessageTexts(messages: Readonly<Record<number, { text: string }>>): ReadonlyMap<string, number> {
  const levels = new Map<string, number>();
  const shared = new Set<string>(['']);
  for (const [level, { text }] of Object.entries(messages)) {
    if (levels.has(text)) shared.add(text);
    levels.set(text, Number(level));
  }
  for (const text of shared) levels.delete(text);
  return levels;
}

function rememberAnswer(ctx: WriteContext, callId: string, version: number): void {
  const now = Date.now();
  ctx.lastAnswers.delete(callId); // re-inserted last: the map stays in answer order
  ctx.lastAnswers.set(callId, { version, at: now });
  // Only answers younger than the interval matter: drop older ones from the front.
  for (const [id, answer] of ctx.lastAnswers) {
    if (now - answer.at < ctx.callMessageMinIntervalMs) break;
    ctx.lastAnswers.delete(id);
  }
}

/** Bookkeeping after CMS showed the message: compare-and-set, then make sure a newer version gets its turn. */
async function finish(ctx: WriteContext, desired: DesiredRow, status: 'applied' | 'unchanged', outcome: WriteOutcome): Promise<void> {
  // The outcome first, the desired-state bookkeeping last: whoever sees the row's new status also finds the outcome.
  await ctx.record('callMessage', outcome);
  const current = await markApplied(ctx.db, desired.callId, desired.version, status);
  if (!current) {
    // A newer version was desired while we wrote. Its producer's job may have been folded into ours; queueing one
    // here (a follow-up, released when this job finishes) guarantees it is written, through the limiter.
    await enqueueCallMessageWrite(ctx.queue, desired.callId);
  }
}

async function handleFailure(
  ctx: WriteContext,
  job: Job<CmsWriteJob>,
  desired: DesiredRow,
  err: CmsApiError,
  base: Pick<WriteOutcome, 'callId' | 'desiredText' | 'version' | 'attempts' | 'latencyMs'>,
): Promise<void> {
  const failure = { ...base, httpStatus: err.status === 0 ? null : err.status, failureReason: err.failureReason };
  if (err.isNotFound) {
    // The call is gone: there is nothing to show a message on. Dropped, never retried.
    await ctx.record('callMessage', { ...failure, status: 'callEnded' });
    await markCallEnded(ctx.db, desired.callId);
    return;
  }
  if (err.isBusy) {
    // CMS asks us to come back later: slow the whole node down. RateLimitError puts the job back in the queue
    // without counting an attempt, so a busy spell never dead-letters a write.
    const pauseMs = ctx.busy.next();
    await ctx.record('callMessage', { ...failure, status: 'retrying', metricOutcome: 'busy' });
    await ctx.rateLimit(pauseMs);
    throw Worker.RateLimitError();
  }
  if (err.isAuth || err.isTlsFailure) {
    // Retrying cannot fix credentials or a certificate: hold the node's writes (the job goes back, uncounted).
    await ctx.health.markUnhealthy(err);
    await ctx.record('callMessage', { ...failure, status: 'held' });
    throw Worker.RateLimitError();
  }
  const maxAttempts = job.opts.attempts ?? CMS_WRITE_ATTEMPTS;
  if (err.isRetryable && base.attempts < maxAttempts) {
    await ctx.record('callMessage', { ...failure, status: 'retrying' });
    throw err; // BullMQ retries after the cmsWrite back-off
  }
  // Out of attempts, or a refusal that will not change (400 parameterError, ...): dead-letter, kept in the failed set.
  await ctx.record('callMessage', { ...failure, status: 'deadLettered' });
  await markDeadLettered(ctx.db, desired.callId, desired.version);
  throw new UnrecoverableError(err.message);
}
