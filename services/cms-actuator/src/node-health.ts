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

/**
 * Whether a node accepts our credentials and certificate. A 401/403 or a certificate failure cannot be fixed by
 * retrying a write, so the node's writes are held (nothing is lost: the jobs stay in the queue) and a cheap
 * GET /api/v1/system/status is tried every probeIntervalMs until it answers 200.
 */
export class NodeHealth {
  #healthy = true;
  #reason: string | null = null;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #o: NodeHealthOptions;
  readonly #recovered: (() => void)[] = [];

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

  /** One probe at start-up, so /readyz and the gauge tell the truth before the first write. */
  async checkOnce(): Promise<void> {
    try {
      await this.#o.client.getSystemStatus();
    } catch (err) {
      if (err instanceof CmsApiError && (err.isAuth || err.isTlsFailure)) await this.markUnhealthy(err);
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

  async #probe(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.#o.client.getSystemStatus();
    } catch (err) {
      this.#o.log.debug({ node: this.#o.client.node, err: (err as Error).message }, 'CMS node still not accepting us');
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
