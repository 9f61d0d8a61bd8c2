import { CMS_NODE_MODES, type CmsNodeMode, type Database } from '@cms/db';
import type { Gauge, Logger } from '@cms/observability';
import { sql } from 'drizzle-orm';

/** A node's mode and why, as /readyz and cms_node_status show it. */
export interface NodeModeView {
  mode: CmsNodeMode;
  /** Why the node is not in events mode (the feed's last refusal or failure), or null. */
  reason: string | null;
  since: string;
  /** The node's write health: ok, held (credentials or certificate refused), unreachable. */
  health: NodeHealthState;
}

export type NodeHealthState = 'ok' | 'held' | 'unreachable';

/**
 * Which way the actuator follows each node's live state: `events` (the feed is subscribed), `polling` (the feed is
 * unavailable or switched off; paced polling carries on alone) or `unreachable` (the API does not answer either).
 * Each change is logged, written to cms_node_status (for the API and the console) and shown by the gauge
 * cms_actuator_node_mode{node,mode} (1 for the node's current mode, 0 for the others).
 */
export class NodeModes {
  readonly #db: Database;
  readonly #gauge: Gauge<'node' | 'mode'>;
  readonly #log: Logger;
  readonly #modes = new Map<string, NodeModeView>();
  /** Whether the node's current view was written to cms_node_status (a replica taking the feed over writes it). */
  readonly #storedLast = new Map<string, boolean>();
  #writes: Promise<void> = Promise.resolve();

  constructor(db: Database, gauge: Gauge<'node' | 'mode'>, log: Logger) {
    this.#db = db;
    this.#gauge = gauge;
    this.#log = log;
  }

  get(node: string): NodeModeView | undefined {
    return this.#modes.get(node);
  }

  all(): Record<string, NodeModeView> {
    return Object.fromEntries(this.#modes);
  }

  /**
   * Records a node's mode; returns the previous one (undefined at the first). `store: false` keeps it to this
   * replica (/readyz, the gauge, the log) when another replica follows the node's feed and writes its row.
   */
  set(
    node: string,
    mode: CmsNodeMode,
    reason: string | null,
    health: NodeHealthState,
    options: { store?: boolean } = {},
  ): CmsNodeMode | undefined {
    const store = options.store ?? true;
    const was = this.#modes.get(node);
    if (was && was.mode === mode && was.reason === reason && was.health === health && (!store || this.#storedLast.get(node)))
      return was.mode;
    const view = { mode, reason, health, since: was && was.mode === mode ? was.since : new Date().toISOString() };
    this.#modes.set(node, view);
    this.#storedLast.set(node, store);
    for (const m of CMS_NODE_MODES) this.#gauge.set({ node, mode: m }, m === mode ? 1 : 0);
    if (!was || was.mode !== mode) {
      const fields = { node, mode, was: was?.mode ?? null, reason };
      if (!store) this.#log.info(fields, 'CMS node mode as the replica following its events feed reports it');
      else if (mode === 'events') this.#log.info(fields, 'CMS node followed over the events feed');
      else this.#log.warn(fields, `CMS node in ${mode} mode: live state from paced polling only`);
    }
    // Written in order, one at a time; a failed write is logged and the next change writes the row again.
    if (store) this.#writes = this.#writes.then(() => this.#store(node, view));
    return was?.mode;
  }

  /** Resolves when every mode change so far is in cms_node_status. */
  flushed(): Promise<void> {
    return this.#writes;
  }

  async #store(node: string, view: NodeModeView): Promise<void> {
    const detail = JSON.stringify({ reason: view.reason, since: view.since });
    try {
      await this.#db.execute(
        sql`INSERT INTO cms_node_status (node, mode, health, detail, updated_at) VALUES (${node}, ${view.mode}, ${view.health}, ${detail}::jsonb, now())
            ON CONFLICT (node) DO UPDATE SET mode = excluded.mode, health = excluded.health, detail = excluded.detail, updated_at = now()`,
      );
    } catch (err) {
      this.#log.warn({ node, err }, 'could not store the CMS node mode in cms_node_status');
    }
  }
}
