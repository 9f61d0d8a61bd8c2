import { readFileSync } from 'node:fs';
import { CmsClient } from '@cms/cms';
import type { CmsNodeConfig } from '@cms/config';
import type { CmsNodeMode, Database } from '@cms/db';
import type { Logger } from '@cms/observability';
import type { Redis } from '@cms/queue';
import type { ActuatorMetrics } from '../metrics.ts';
import type { NodeWriter } from '../node-writer.ts';
import type { RecomputeRequest } from '../reconcile/node-reconciler.ts';
import { endRemovedCall } from '../reconcile/snapshot-store.ts';
import { AuthTokens } from './auth-token.ts';
import { storeListedCall } from './call-store.ts';
import { FEED_LEASE_MS, NodeFeedLease, replicaId } from './feed-lease.ts';
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
  /**
   * Where the replicas agree which of them follows each node's feed (feed-lease.ts): the actuator's Redis and its
   * queue prefix. Without it this replica follows every node's feed itself.
   */
  lease?: { redis: Redis; prefix: string; replica?: string };
}

/** What /readyz shows of one node's live state. */
export interface NodeFeedView extends NodeModeView {
  connections: number;
  rosterSubscriptions: number;
  /** The replica following the node's feed (this one or another, from the lease); null when none is known. */
  feedReplica: string | null;
  /** This replica follows the node's feed. */
  followsFeed: boolean;
}

/**
 * The CMS events feed of every configured node, stored into the same picture the API serves
 * (call_leg_observations). One roster subscription per meeting, on one bridge that hosts it (RosterPlacement);
 * each node's mode (events, polling, unreachable) in cms_node_status, the cms_actuator_node_mode gauge and /readyz.
 * Changes that can move a meeting's level ask the policy worker to recompute it.
 *
 * With several replicas, one follows each node's feed at a time (the lease's holder, feed-lease.ts); the others
 * store nothing from that node's feed and report the holder's mode (not their own lack of a feed) in /readyz and
 * the gauge, and only the holder writes the node's row of cms_node_status. Each replica places the rosters of the
 * nodes it follows, so a meeting hosted on two nodes followed by two replicas may get one roster subscription on each.
 */
export class EventsFeed {
  readonly modes: NodeModes;
  /** The feeds this replica follows now, by node (all nodes without a lease; the leases held with one). */
  readonly feeds = new Map<string, NodeEventsFeed>();
  readonly #d: EventsFeedDeps;
  readonly #leases = new Map<string, NodeFeedLease>();
  readonly #replica: string;
  /** Nodes taken over from another replica whose feed has not been live yet (a pass follows when it is). */
  readonly #takeoverPass = new Set<string>();
  #closing = false;
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
    this.#replica = deps.lease?.replica ?? replicaId();
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
      // Read once, like the API client: the same CA, and verification always on.
      const ca = node.caFile ? readFileSync(node.caFile) : undefined;
      const newFeed = () =>
        new NodeEventsFeed({
          node: node.name,
          baseUrl: client.url,
          ca,
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
        });
      if (!deps.lease) {
        this.feeds.set(node.name, newFeed());
        continue;
      }
      const lease: NodeFeedLease = new NodeFeedLease({
        redis: deps.lease.redis,
        prefix: deps.lease.prefix,
        node: node.name,
        replica: this.#replica,
        leaseMs: deps.limits.leaseMs ?? FEED_LEASE_MS,
        log: deps.log,
        acquired: () => {
          if (this.#closing) return;
          // A fresh feed: its first calls list is complete, and a pass once it is live ends what ended meanwhile.
          const feed = newFeed();
          this.feeds.set(node.name, feed);
          if (lease.takeover) this.#takeoverPass.add(node.name);
          this.#updateMode(node.name);
          feed.start();
        },
        lost: () => {
          const feed = this.feeds.get(node.name);
          feed?.stop();
          this.feeds.delete(node.name);
          this.#takeoverPass.delete(node.name);
          if (this.#closing) return;
          this.#updateMode(node.name);
          this.#place();
        },
        observed: () => {
          if (!this.#closing) this.#updateMode(node.name);
        },
      });
      this.#leases.set(node.name, lease);
    }
  }

  start(): void {
    const { nodes, writers, enabled } = this.#d;
    for (const node of nodes) {
      const leased = this.#leases.has(node.name);
      const reason = !enabled ? 'cms.events.enabled is false' : leased ? 'waiting for the events feed lease' : 'connecting';
      // Until the lease says whether this replica follows the node, the node's row is left to whoever does.
      this.modes.set(node.name, 'polling', reason, 'ok', { store: !leased });
      // Outside events mode the API's reachability decides between polling and unreachable; the write health is shown too.
      writers.get(node.name)?.health.onContact(() => this.#updateMode(node.name));
      writers.get(node.name)?.health.onRecovered(() => this.#updateMode(node.name));
    }
    for (const feed of this.feeds.values()) feed.start();
    for (const lease of this.#leases.values()) lease.start();
  }

  /** The replica's name in the leases (hostname:pid:random). */
  get replica(): string {
    return this.#replica;
  }

  /**
   * Whether a replica (this one or the lease's holder) has the node's feed live: reconciliation then leaves the
   * feed's rows alone and reads no legs. The holder's mode is as fresh as its last renewal (a fifth of the lease).
   */
  liveAnywhere(node: string): boolean {
    if (this.feeds.get(node)?.state.live === true) return true;
    const lease = this.#leases.get(node);
    return lease !== undefined && !lease.held && lease.holder?.mode === 'events';
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
      const lease = this.#leases.get(node);
      const followsFeed = feed !== undefined;
      const feedReplica = followsFeed ? this.#replica : (lease?.holder?.replica ?? null);
      out[node] = { ...mode, connections: feed?.connections ?? 0, rosterSubscriptions: feed?.rosterCount ?? 0, feedReplica, followsFeed };
    }
    return out;
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const feed of this.feeds.values()) feed.stop();
    // The feeds are closed first, so no two replicas follow a node when another takes the released lease at once.
    await Promise.all([...this.#leases.values()].map((lease) => lease.close()));
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
    if (state.live && this.#takeoverPass.delete(node)) {
      // Calls that ended while no replica followed the node: the new feed never knew them, a pass ends them.
      void this.#d.requestReconcile(node, 'eventsTakeover');
    }
  }

  #updateMode(node: string): void {
    const feed = this.feeds.get(node);
    const writerHealth = this.#d.writers.get(node)?.health;
    const contact = writerHealth?.lastContact;
    const health: NodeHealthState = writerHealth && !writerHealth.healthy ? 'held' : contact?.reachable === false ? 'unreachable' : 'ok';
    const lease = this.#leases.get(node);
    let mode: CmsNodeMode;
    let reason: string | null;
    if (lease && !feed) {
      // Another replica follows the feed (or none does yet): report what it says, and leave the node's row to it.
      const holder = lease.holder;
      if (holder) {
        mode = holder.mode;
        reason = `events feed followed by replica ${holder.replica}${holder.reason ? `: ${holder.reason}` : ''}`;
      } else {
        mode = (contact?.reachable ?? true) ? 'polling' : 'unreachable';
        reason = lease.unknown ?? 'no replica holds the events feed lease';
      }
      const was = this.modes.set(node, mode, reason, health, { store: false });
      if (was === 'events' && mode !== 'events') void this.#d.requestReconcile(node, 'eventsUnavailable');
      return;
    }
    if (feed?.state.live) {
      mode = 'events';
      reason = null;
    } else {
      const reachable = feed?.state.apiReachable ?? contact?.reachable ?? true;
      mode = reachable ? 'polling' : 'unreachable';
      reason = feed ? feed.state.reason : 'cms.events.enabled is false';
    }
    const was = this.modes.set(node, mode, reason, health);
    // The other replicas read the mode from the lease; a pass they run must not take the feed for live.
    const published = lease?.publish(mode, reason) ?? Promise.resolve();
    if (was === 'events' && mode !== 'events') {
      // What the feed would have told us meanwhile, polling reads now; the feed resyncs itself when it is back.
      void published.then(() => this.#d.requestReconcile(node, 'eventsUnavailable'));
    }
  }
}
