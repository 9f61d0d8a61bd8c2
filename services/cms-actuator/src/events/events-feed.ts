import { readFileSync } from 'node:fs';
import { CmsClient } from '@cms/cms';
import type { CmsNodeConfig } from '@cms/config';
import type { CmsNodeMode, Database } from '@cms/db';
import type { Logger } from '@cms/observability';
import type { ActuatorMetrics } from '../metrics.ts';
import type { NodeWriter } from '../node-writer.ts';
import type { RecomputeRequest } from '../reconcile/node-reconciler.ts';
import { endRemovedCall } from '../reconcile/snapshot-store.ts';
import { AuthTokens } from './auth-token.ts';
import { storeListedCall } from './call-store.ts';
import { type FeedState, NodeEventsFeed, type NodeFeedLimits } from './node-feed.ts';
import { type NodeHealthState, NodeModes, type NodeModeView } from './node-mode.ts';
import type { RosterEntry } from './protocol.ts';
import { RecomputeCoalescer } from './recompute-coalescer.ts';
import { RosterPlacement } from './roster-placement.ts';
import { anyRosterOnly, forgetCall, storeRoster } from './roster-store.ts';

export interface EventsFeedDeps {
  nodes: readonly CmsNodeConfig[];
  writers: ReadonlyMap<string, NodeWriter>;
  db: Database;
  log: Logger;
  metrics: ActuatorMetrics;
  /** cms.events.enabled: false leaves every node to paced polling. */
  enabled: boolean;
  limits: NodeFeedLimits;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  requestRecompute: RecomputeRequest;
  /** Queues a reconciliation pass of a node (polling catches up when the feed stops). */
  requestReconcile: (node: string, reason: string) => Promise<void>;
}

/** What /readyz shows of one node's live state. */
export interface NodeFeedView extends NodeModeView {
  connections: number;
  rosterSubscriptions: number;
}

/**
 * The CMS events feed of every configured node, stored into the same picture the API serves
 * (call_leg_observations). One roster subscription per meeting, on one bridge that hosts it (RosterPlacement);
 * each node's mode (events, polling, unreachable) in cms_node_status, the cms_actuator_node_mode gauge and /readyz.
 * Changes that can move a meeting's level ask the policy worker to recompute it.
 */
export class EventsFeed {
  readonly modes: NodeModes;
  readonly feeds = new Map<string, NodeEventsFeed>();
  readonly #d: EventsFeedDeps;
  readonly #placement: RosterPlacement;
  readonly #clients: CmsClient[] = [];
  readonly #tokens = new Map<string, AuthTokens>();
  /** Roster changes ask for one recompute per meeting and window, not one per change (recompute-coalescer.ts). */
  readonly #recomputes: RecomputeCoalescer;

  constructor(deps: EventsFeedDeps) {
    this.#d = deps;
    this.modes = new NodeModes(deps.db, deps.metrics.nodeMode, deps.log);
    this.#placement = new RosterPlacement(deps.nodes.map((n) => n.name));
    this.#recomputes = new RecomputeCoalescer({
      send: deps.requestRecompute,
      windowMs: deps.limits.recomputeCoalesceMs,
      // The next roster change or reconciliation pass asks again; the live picture itself is stored.
      onError: (err, callIds) => deps.log.warn({ err, callIds }, 'could not ask the policy worker to recompute after a roster change'),
      anyRosterOnly: (callIds, participants) => anyRosterOnly(deps.db, callIds, participants),
    });
    if (!deps.enabled) return;
    for (const node of deps.nodes) {
      const client = new CmsClient(node, {
        connectTimeoutMs: deps.connectTimeoutMs,
        requestTimeoutMs: deps.requestTimeoutMs,
        connections: 1,
      });
      this.#clients.push(client);
      const tokens = new AuthTokens(client, deps.limits.tokenRefreshMs);
      this.#tokens.set(node.name, tokens);
      this.feeds.set(
        node.name,
        new NodeEventsFeed({
          node: node.name,
          baseUrl: client.url,
          // Read once, like the API client: the same CA, and verification always on.
          ca: node.caFile ? readFileSync(node.caFile) : undefined,
          tokens,
          limits: deps.limits,
          log: deps.log,
          events: {
            callsChanged: () => this.#place(),
            callListed: async (n, call) => {
              await storeListedCall(deps.db, n, call);
            },
            callGone: (n, callId, how) => this.#callGone(n, callId, how),
            rosterDeactivated: (n, callId) => {
              this.#placement.deactivated(n, callId);
              this.#place();
            },
            roster: (n, callId, entries, fullList) => this.#roster(n, callId, entries, fullList),
            stateChanged: (n, state) => this.#stateChanged(n, state),
          },
        }),
      );
    }
  }

  start(): void {
    const { nodes, writers, enabled } = this.#d;
    for (const node of nodes) {
      const reason = enabled ? 'connecting' : 'cms.events.enabled is false';
      this.modes.set(node.name, 'polling', reason, 'ok');
      // Outside events mode the API's reachability decides between polling and unreachable; the write health is shown too.
      writers.get(node.name)?.health.onContact(() => this.#updateMode(node.name));
      writers.get(node.name)?.health.onRecovered(() => this.#updateMode(node.name));
    }
    for (const feed of this.feeds.values()) feed.start();
  }

  /** Auth tokens asked for so far, per node (tests). */
  tokensIssued(node: string): number {
    return this.#tokens.get(node)?.issued ?? 0;
  }

  /** Each node's mode, why, and its feed's connections, for /readyz. */
  view(): Record<string, NodeFeedView> {
    const out: Record<string, NodeFeedView> = {};
    for (const [node, mode] of Object.entries(this.modes.all())) {
      const feed = this.feeds.get(node);
      out[node] = { ...mode, connections: feed?.connections ?? 0, rosterSubscriptions: feed?.rosterCount ?? 0 };
    }
    return out;
  }

  async close(): Promise<void> {
    for (const feed of this.feeds.values()) feed.stop();
    // What the feed stored still gets decided (the recompute queue closes after this).
    await this.#recomputes.flush();
    await this.modes.flushed();
    await Promise.all(this.#clients.map((c) => c.close()));
  }

  #place(): void {
    const calls = new Map([...this.feeds].map(([node, feed]) => [node, feed.calls]));
    const wanted = this.#placement.place(calls, (node) => this.feeds.get(node)?.state.live === true);
    for (const [node, callIds] of wanted) this.feeds.get(node)?.setWantedRosters(callIds);
  }

  /**
   * A call CMS removed from the node's calls list has ended there: it is ended at once (the API's active view and
   * the policy stop counting it, as a reconciliation pass would do), and its CDRs stay the record. A call merely not
   * named by the first list after a reconnect is only forgotten by the feed, and a reconciliation pass asks CMS for
   * it by id before anything is ended: a late or partial list must not end a running meeting.
   */
  async #callGone(node: string, callId: string, how: 'removed' | 'unlisted'): Promise<void> {
    const meetingKey = this.feeds.get(node)?.calls.get(callId) ?? callId;
    this.#placement.forget(node, callId);
    if (how === 'removed') {
      const { ended, rowsRemoved } = await endRemovedCall(this.#d.db, node, callId);
      if (ended || rowsRemoved) this.#recomputes.now(meetingKey, [callId], 'events:callEnded');
      return;
    }
    if (await forgetCall(this.#d.db, callId)) this.#recomputes.now(meetingKey, [callId], 'events:callEnded');
    await this.#d.requestReconcile(node, 'eventsResync');
  }

  async #roster(node: string, callId: string, entries: RosterEntry[], fullList: boolean): Promise<void> {
    const meetingKey = this.feeds.get(node)?.calls.get(callId) ?? callId;
    this.#d.metrics.eventsRosterUpdates.inc({ node }, entries.length);
    const stored = await storeRoster(this.#d.db, { node, callId, meetingKey }, entries, fullList);
    if (stored.policyRelevant) this.#recomputes.now(meetingKey, stored.callIds, 'events:roster', stored.participants);
    // Once a participant no CDR has named yet counts for the policy (UNCORROBORATED_GRACE in load-meetings.ts).
    if (stored.uncorroborated.length) this.#recomputes.afterGrace(meetingKey, stored.callIds, stored.uncorroborated, 'events:rosterOnly');
  }

  #stateChanged(node: string, state: FeedState): void {
    this.#updateMode(node);
    // A feed that comes or goes moves its meetings' rosters to or from the other bridges.
    this.#place();
    if (state.live) this.#d.metrics.eventsConnects.inc({ node });
  }

  #updateMode(node: string): void {
    const feed = this.feeds.get(node);
    const writerHealth = this.#d.writers.get(node)?.health;
    const contact = writerHealth?.lastContact;
    const health: NodeHealthState = writerHealth && !writerHealth.healthy ? 'held' : contact?.reachable === false ? 'unreachable' : 'ok';
    let mode: CmsNodeMode;
    let reason: string | null;
    if (feed?.state.live) {
      mode = 'events';
      reason = null;
    } else {
      const reachable = feed?.state.apiReachable ?? contact?.reachable ?? true;
      mode = reachable ? 'polling' : 'unreachable';
      reason = feed ? feed.state.reason : 'cms.events.enabled is false';
    }
    const was = this.modes.set(node, mode, reason, health);
    if (was === 'events' && mode !== 'events') {
      // What the feed would have told us meanwhile, polling reads now; the feed resyncs itself when it is back.
      void this.#d.requestReconcile(node, 'eventsUnavailable');
    }
  }
}
