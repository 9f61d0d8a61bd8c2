import { CmsApiError, CmsClient, type CmsClientOptions, type CmsNodeConnection, type CmsRequest, type CmsResponse } from '@cms/cms';
import { cappedExponentialDelay } from '@cms/queue';
import { BusyBackoff } from '../busy-backoff.ts';
import type { RequestCeiling } from '../request-gate.ts';

/** The actuator is shutting down: a pass stops between two reads instead of holding the shutdown up. */
export class ReadsAbortedError extends Error {
  constructor(node: string) {
    super(`CMS ${node}: reads stopped (shutting down)`);
    this.name = 'ReadsAbortedError';
  }
}

/**
 * Reads spread evenly: one per 1/N seconds rather than N in a burst at the start of every second, so a pass over
 * a thousand calls is a steady trickle CMS hardly notices.
 */
export function readCeiling(readsPerSecond: number): RequestCeiling {
  return { limit: 1, windowMs: Math.max(1, Math.ceil(1000 / readsPerSecond)) };
}

export interface PacedReadClientOptions extends CmsClientOptions {
  /** The node's read ceiling (a RequestGate on its own Redis key, so every replica shares it). */
  gate: { acquire(): Promise<void> };
  /** Aborted when the actuator shuts down. */
  signal: AbortSignal;
  busyInitialDelayMs: number;
  busyMaxDelayMs: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** 503 answers retried per request at most. */
  busyRetries: number;
  /** Timeouts / 5xx retried per request at most. */
  retries: number;
  /** Called for every request sent (retries included). */
  onRequest?: () => void;
}

/**
 * The CMS API client of reconciliation and call placement: every request waits for the node's read ceiling, a 503
 * ("busy, come back later") is retried after a doubling pause, a timeout or 5xx a few times with back-off. Paging
 * (allCalls, allCallLegs) goes through `request` too, so each page is one paced read. Reads are not writes (CMS's
 * write pacing does not apply), but a pass over every call of a busy node must not compete with its real work.
 */
export class PacedReadClient extends CmsClient {
  readonly #o: PacedReadClientOptions;
  readonly #busy: BusyBackoff;

  constructor(node: CmsNodeConnection, options: PacedReadClientOptions) {
    super(node, options);
    this.#o = options;
    this.#busy = new BusyBackoff(options.busyInitialDelayMs, options.busyMaxDelayMs);
  }

  override async request(method: string, path: string, request: CmsRequest = {}): Promise<CmsResponse> {
    let busy = 0;
    let failures = 0;
    for (;;) {
      if (this.#o.signal.aborted) throw new ReadsAbortedError(this.node);
      await this.#o.gate.acquire();
      if (this.#o.signal.aborted) throw new ReadsAbortedError(this.node);
      this.#o.onRequest?.();
      try {
        const response = await super.request(method, path, request);
        this.#busy.reset();
        return response;
      } catch (err) {
        if (!(err instanceof CmsApiError)) throw err;
        if (err.isBusy && busy < this.#o.busyRetries) {
          busy++;
          await pause(this.#busy.next(), this.#o.signal);
          continue;
        }
        if (err.isRetryable && failures < this.#o.retries) {
          failures++;
          await pause(cappedExponentialDelay(failures, this.#o.retryBaseDelayMs, this.#o.retryMaxDelayMs), this.#o.signal);
          continue;
        }
        throw err;
      }
    }
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
