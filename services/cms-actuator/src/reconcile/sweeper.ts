import type { Logger } from '@cms/observability';
import { sweepUnqueuedActions } from '../actions/action-sweep.ts';
import type { ActuatorMetrics } from '../metrics.ts';
import { type PlacementDeps, placeUnplacedCalls } from './call-placement.ts';
import { type PendingSweepDeps, sweepPending } from './pending-sweep.ts';

export interface SweeperDeps {
  pending: PendingSweepDeps;
  placement: PlacementDeps;
  log: Logger;
  metrics: ActuatorMetrics;
  intervalMs: number;
}

/**
 * Every `intervalMs`: desired state and operator actions that never got a write job, and calls whose node is unknown. Rounds never
 * overlap; a failed round (Postgres or Redis away) is logged and the next one tries again.
 */
export class Sweeper {
  readonly #d: SweeperDeps;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #stopped = false;

  constructor(deps: SweeperDeps) {
    this.#d = deps;
  }

  start(): void {
    this.#schedule();
  }

  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#round;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#round = this.#sweep().finally(() => {
        this.#round = undefined;
        this.#schedule();
      });
    }, this.#d.intervalMs);
    this.#timer.unref();
  }

  async #sweep(): Promise<void> {
    const { log, metrics } = this.#d;
    try {
      const queued = await sweepPending(this.#d.pending);
      const placed = await placeUnplacedCalls(this.#d.placement);
      // Operator actions stored without their jobs; the same age and batch as pending desired state.
      const actions = await sweepUnqueuedActions({ ...this.#d.pending, redis: this.#d.placement.redis });
      if (queued || placed || actions) log.info({ queued, placed, actions }, 'desired-state sweep');
    } catch (err) {
      log.warn({ err }, 'desired-state sweep failed: next round tries again');
    } finally {
      metrics.sweeps.inc();
    }
  }
}
