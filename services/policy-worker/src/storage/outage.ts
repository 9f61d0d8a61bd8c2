import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@cms/observability';
import { classifyFailure, describeFailure } from './pg-failure.ts';

export interface OutageGuard {
  /**
   * Runs `work`; while it fails because Postgres is unavailable (down, restarting, unreachable), waits with
   * back-off and runs it again. Any other failure, or a failure after stop(), is thrown to the caller.
   */
  run<T>(work: () => Promise<T>): Promise<T>;
  /** Ends every wait: the work in hand fails with its last error (so the queue retries it), nothing new waits. */
  stop(): void;
}

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 10_000;
const REMIND_EVERY_MS = 60_000;

/**
 * Holding batches while Postgres is away, rather than failing them: a failed job would be retried by the queue
 * after its own back-off, burning one of its attempts each time and logging a line per batch per attempt
 * (thousands during a restart under load). Held here, the batches wait in order; the outage is logged once
 * when it starts (then once a minute) and once when it ends. Work must be idempotent: a commit whose answer
 * was lost may have happened, and runs again (records are keyed on session + correlatorIndex).
 */
export function createOutageGuard(log: Logger): OutageGuard {
  const stopped = new AbortController();
  let since: number | null = null;
  let reminded = 0;
  return {
    async run(work) {
      for (let attempt = 0; ; attempt++) {
        try {
          const result = await work();
          if (since !== null) {
            log.info({ downSeconds: Math.round((Date.now() - since) / 1000) }, 'postgres answers again: storing the batches held');
            since = null;
          }
          return result;
        } catch (err) {
          if (stopped.signal.aborted || classifyFailure(err) !== 'unavailable') throw err;
          const now = Date.now();
          if (since === null) {
            since = now;
            reminded = now;
            log.warn({ err: describeFailure(err) }, 'postgres unavailable: holding batches and retrying with back-off');
          } else if (now - reminded >= REMIND_EVERY_MS) {
            reminded = now;
            log.warn(
              { err: describeFailure(err), downSeconds: Math.round((now - since) / 1000) },
              'postgres still unavailable: holding batches',
            );
          }
          // Doubling up to 10 s, with jitter so that replicas do not reconnect in step.
          const ceiling = Math.min(FIRST_DELAY_MS * 2 ** attempt, MAX_DELAY_MS);
          try {
            await sleep(ceiling / 2 + Math.random() * (ceiling / 2), undefined, { signal: stopped.signal });
          } catch {
            throw err;
          }
        }
      }
    },
    stop() {
      stopped.abort();
    },
  };
}
