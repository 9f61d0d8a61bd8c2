import { CmsApiError, type CmsClient } from '@cms/cms';
import type { Gauge, Logger } from '@cms/observability';

export interface NodeHealthOptions {
  client: CmsClient;
  log: Logger;
  gauge: Gauge<'node'>;
  probeIntervalMs: number;
  /** Stop taking this node's jobs (they stay queued). */
  hold: () => Promise<void>;
  /** Take this node's jobs again. */
  resume: () => Promise<void>;
}

/** "connectionFailed: connect ECONNREFUSED 127.0.0.1:445": CMS's failure kind and what the socket said. */
function transportError(err: unknown): string {
  if (!(err instanceof CmsApiError)) return err instanceof Error ? err.message : String(err);
  const cause = err.cause instanceof Error ? err.cause.message : null;
  return [err.failureReason, cause].filter(Boolean).join(': ') || err.message;
}

/** The outcome of the last request this health tracker made to the node. */
export interface NodeContact {
  /** The node answered (any HTTP status); false when it could not be reached (refused, timed out, TLS failed). */
  reachable: boolean;
  /** When (Date.now()). */
  at: number;
  /** Why it could not be reached. */
  error: string | null;
}

/**
 * How old the last contact may be before /readyz asks the node again. Readiness is polled every few seconds by an
 * orchestrator; this keeps it to one cheap GET per node per interval however often it is polled.
 */
const CONTACT_MAX_AGE_MS = 5000;

/**
 * Whether a node accepts our credentials and certificate, and whether it can be reached at all.
 *
 * A 401/403 or a certificate failure cannot be fixed by retrying a write, so the node's writes are held (nothing is
 * lost: the jobs stay in the queue) and a cheap GET /api/v1/system/status is tried every probeIntervalMs until it
 * answers 200. A node that cannot be reached (connection refused, timeout) is not held — writes retry with back-off
 * on their own — but readiness says so, with the last contact's error, instead of reporting the node fine.
 */
export class NodeHealth {
  #healthy = true;
  #reason: string | null = null;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #contact: NodeContact | null = null;
  #contactProbe: Promise<void> | null = null;
  readonly #o: NodeHealthOptions;
  readonly #recovered: (() => void)[] = [];
  readonly #contactListeners: ((contact: NodeContact) => void)[] = [];

  constructor(options: NodeHealthOptions) {
    this.#o = options;
    options.gauge.set({ node: options.client.node }, 1);
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  /** Why writes are held, for /readyz. */
  get reason(): string | null {
    return this.#reason;
  }

  /** The outcome of the last request made here (start-up probe, hold probe, readiness probe); null before the first. */
  get lastContact(): NodeContact | null {
    return this.#contact;
  }

  /** `listener` runs after every contact (for the reachability gauge). */
  onContact(listener: (contact: NodeContact) => void): void {
    this.#contactListeners.push(listener);
  }

  /** One probe at start-up, so /readyz and the gauge tell the truth before the first write. */
  async checkOnce(): Promise<void> {
    try {
      await this.#o.client.getSystemStatus();
      this.#noteContact(null);
    } catch (err) {
      this.#noteContact(err);
      if (err instanceof CmsApiError && (err.isAuth || err.isTlsFailure)) await this.markUnhealthy(err);
    }
  }

  /**
   * For /readyz: throws, with an operator's reason, while writes are held or the node could not be reached at the
   * last contact. Asks the node again (GET /api/v1/system/status) when that contact is older than `maxAgeMs`.
   */
  async assertReady(maxAgeMs = CONTACT_MAX_AGE_MS): Promise<void> {
    if (!this.#healthy) throw new Error(this.#reason ?? 'writes are held');
    if (!this.#contact || Date.now() - this.#contact.at > maxAgeMs) {
      this.#contactProbe ??= this.checkOnce().finally(() => {
        this.#contactProbe = null;
      });
      await this.#contactProbe;
    }
    if (!this.#healthy) throw new Error(this.#reason ?? 'writes are held');
    const contact = this.#contact;
    if (contact && !contact.reachable) {
      const ago = Math.max(0, Math.round((Date.now() - contact.at) / 100) / 10);
      throw new Error(
        `CMS ${this.#o.client.node} cannot be reached at ${this.#o.client.url} (${contact.error}; ${ago} s ago); writes wait and retry`,
      );
    }
  }

  /** `listener` runs each time the node accepts us again after a hold (reconciliation catches up then). */
  onRecovered(listener: () => void): void {
    this.#recovered.push(listener);
  }

  /** Called when a request met 401/403 or a certificate failure. Idempotent. */
  async markUnhealthy(err: CmsApiError): Promise<void> {
    if (this.#stopped || !this.#healthy) return;
    this.#healthy = false;
    this.#reason = err.isAuth
      ? `CMS ${err.node} refused our API credentials (${err.status}${err.failureReason ? ` ${err.failureReason}` : ''}); writes are held`
      : `the certificate of CMS ${err.node} could not be verified (check caFile); writes are held`;
    this.#o.gauge.set({ node: this.#o.client.node }, 0);
    this.#o.log.error({ node: err.node, status: err.status, failureReason: err.failureReason }, this.#reason);
    await this.#o.hold();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#probe(), this.#o.probeIntervalMs);
    this.#timer.unref();
  }

  /** Records the outcome of a request to the node: `err` null when it answered 2xx. Logs when reachability changes. */
  #noteContact(err: unknown): void {
    // Any HTTP answer, even 401 or 503, means the node is there; only transport failures (status 0) mean it is not.
    const unreachable = err instanceof CmsApiError ? err.status === 0 : err != null;
    const contact: NodeContact = { reachable: !unreachable, at: Date.now(), error: unreachable ? transportError(err) : null };
    const was = this.#contact;
    this.#contact = contact;
    const node = this.#o.client.node;
    if (!contact.reachable && (was === null || was.reachable)) {
      this.#o.log.warn({ node, url: this.#o.client.url, err: contact.error }, 'CMS node cannot be reached');
    } else if (contact.reachable && was !== null && !was.reachable) {
      this.#o.log.info({ node }, 'CMS node can be reached again');
    }
    for (const listener of this.#contactListeners) listener(contact);
  }

  async #probe(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.#o.client.getSystemStatus();
      this.#noteContact(null);
    } catch (err) {
      this.#noteContact(err);
      this.#o.log.debug({ node: this.#o.client.node, err }, 'CMS node still not accepting us');
      this.#schedule();
      return;
    }
    if (this.#stopped) return;
    this.#healthy = true;
    this.#reason = null;
    this.#o.gauge.set({ node: this.#o.client.node }, 1);
    this.#o.log.info({ node: this.#o.client.node }, 'CMS node accepts our requests again: writes resume');
    await this.#o.resume();
    for (const listener of this.#recovered) listener();
  }
}
