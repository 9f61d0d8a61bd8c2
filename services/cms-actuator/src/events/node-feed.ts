import { CmsApiError } from '@cms/cms';
import type { Logger } from '@cms/observability';
import { cappedExponentialDelay } from '@cms/queue';
import type { AuthTokens } from './auth-token.ts';
import { FeedConnection, FeedUnavailableError } from './feed-connection.ts';
import {
  CALL_ELEMENTS,
  type CallListEntry,
  type CmsEventMessage,
  ROSTER_ELEMENTS,
  type RosterEntry,
  type SubscriptionRequest,
} from './protocol.ts';

/** The index of the `calls` subscription on a node's first connection. */
const CALLS_INDEX = 0;

/**
 * How long after the `calls` subscription (re)starts its first list may take. A bridge with no calls sends no
 * list at all, so calls we held that are not listed by then have ended while we were not listening.
 */
const CALLS_RESYNC_MS = 2000;

export interface NodeFeedLimits {
  /** WebSocket connections per node (CMS allows 5). */
  maxConnections: number;
  /** Subscriptions per connection (CMS allows 100). */
  maxSubscriptions: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  handshakeTimeoutMs: number;
  /** A new auth token is asked for this often, whether or not a connection needs one. */
  tokenRefreshMs: number;
  /**
   * Roster changes of one meeting within this long of its first one ask the policy worker for one recompute
   * (events-feed.ts; default RECOMPUTE_COALESCE_MS there). Tests lengthen it to see the coalescing.
   */
  recomputeCoalesceMs?: number;
  /**
   * How long the lease of one node's feed lasts without renewal (feed-lease.ts; default FEED_LEASE_MS there):
   * a replica that dies is replaced within about this long. Tests shorten it.
   */
  leaseMs?: number;
}

/** How the feed of one node stands, for its mode. */
export interface FeedState {
  /** The `calls` subscription is active: the node's live state arrives over the feed. */
  live: boolean;
  /** Whether the node's API answered our last token request; null before the first. */
  apiReachable: boolean | null;
  /** Why the feed is not live (the last refusal or failure), or null. */
  reason: string | null;
}

/** What the feed of one node reports to the cluster-wide feed. */
export interface NodeFeedEvents {
  /** The node's calls (call id → meeting key) changed. */
  callsChanged(node: string): void;
  /** The `calls` subscription listed a call (new, or with changed elements). */
  callListed(node: string, call: { id: string; name: string | null; callCorrelator: string | null }): Promise<void>;
  /**
   * A call left the node: `removed` when the calls list says so (CMS ended it), `unlisted` when the first list
   * after a (re)subscription did not name it (it ended while we were not listening, or the list was late).
   */
  callGone(node: string, callId: string, how: 'removed' | 'unlisted'): Promise<void>;
  /** CMS deactivated a roster subscription: the call left this bridge; another bridge hosting it takes the roster. */
  rosterDeactivated(node: string, callId: string): void;
  roster(node: string, callId: string, entries: RosterEntry[], fullList: boolean): Promise<void>;
  stateChanged(node: string, state: FeedState): void;
}

interface Slot {
  connection: FeedConnection | null;
  /** call id → subscription index, the rosters this connection carries. */
  rosters: Map<string, number>;
  /** Roster subscription indexes CMS has reported active on this connection. */
  active: Set<number>;
  /** Roster subscription indexes whose next rosterUpdate is their first, full list. */
  awaitingFullList: Set<number>;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  opening: boolean;
  /** The subscription set last sent on this connection (JSON), so an unchanged set is not sent again. */
  sent: string;
}

/**
 * The events feed of one node: up to `maxConnections` WebSockets, the first carrying the `calls` subscription and
 * each carrying at most `maxSubscriptions` roster subscriptions (the first one fewer), assigned sticky so that a
 * new call does not move the others. Every subscribe request carries the connection's complete set. A connection
 * that closes or cannot be opened is tried again after a capped, jittered exponential pause; when it is back, its
 * subscriptions start over and their first answers (full lists) resync what changed meanwhile.
 */
export class NodeEventsFeed {
  readonly node: string;
  readonly #baseUrl: string;
  readonly #ca: Buffer | undefined;
  readonly #tokens: AuthTokens;
  readonly #limits: NodeFeedLimits;
  readonly #log: Logger;
  readonly #events: NodeFeedEvents;
  readonly #slots: Slot[] = [];
  /** Call id → meeting key, as the `calls` subscription lists them. */
  readonly calls = new Map<string, string>();
  #wanted = new Set<string>();
  #nextIndex = CALLS_INDEX + 1;
  #callsActive = false;
  #callsResync: { before: Set<string>; timer: NodeJS.Timeout } | null = null;
  #state: FeedState = { live: false, apiReachable: null, reason: 'connecting' };
  #tokenTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #syncQueued = false;
  #rosterLimitWarned = false;

  constructor(options: {
    node: string;
    baseUrl: string;
    ca: Buffer | undefined;
    tokens: AuthTokens;
    limits: NodeFeedLimits;
    log: Logger;
    events: NodeFeedEvents;
  }) {
    this.node = options.node;
    this.#baseUrl = options.baseUrl;
    this.#ca = options.ca;
    this.#tokens = options.tokens;
    this.#limits = options.limits;
    this.#log = options.log;
    this.#events = options.events;
  }

  get state(): FeedState {
    return this.#state;
  }

  /** Open connections (tests, /readyz detail). */
  get connections(): number {
    return this.#slots.filter((s) => s.connection && !s.connection.closed).length;
  }

  /** Roster subscriptions this node carries. */
  get rosterCount(): number {
    return this.#slots.reduce((n, s) => n + s.rosters.size, 0);
  }

  start(): void {
    this.#slot(0);
    void this.#open(0);
    // Only new connections present a token, but one is kept fresh so that a reconnect never waits on an expired one.
    this.#tokenTimer = setInterval(() => {
      this.#tokens.renew().catch((err) => this.#log.debug({ node: this.node, err }, 'events feed: token renewal failed'));
    }, this.#limits.tokenRefreshMs);
    this.#tokenTimer.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#tokenTimer);
    if (this.#callsResync) clearTimeout(this.#callsResync.timer);
    for (const slot of this.#slots) {
      clearTimeout(slot.timer);
      slot.connection?.close();
    }
  }

  /** The calls of this node whose roster this node carries (the cluster-wide feed picks one bridge per meeting). */
  setWantedRosters(callIds: Set<string>): void {
    this.#wanted = callIds;
    this.#queueSync();
  }

  // ---- subscriptions ----

  #queueSync(): void {
    if (this.#syncQueued) return;
    this.#syncQueued = true;
    queueMicrotask(() => {
      this.#syncQueued = false;
      if (!this.#stopped) this.#sync();
    });
  }

  /** Brings every connection's roster set in line with the wanted set and sends the sets that changed. */
  #sync(): void {
    for (const slot of this.#slots) {
      for (const callId of slot.rosters.keys()) if (!this.#wanted.has(callId)) slot.rosters.delete(callId);
    }
    const carried = new Set(this.#slots.flatMap((s) => [...s.rosters.keys()]));
    for (const callId of this.#wanted) {
      if (carried.has(callId)) continue;
      const slot = this.#slotWithRoom();
      if (slot === undefined) {
        if (!this.#rosterLimitWarned) {
          this.#log.warn(
            { node: this.node, wanted: this.#wanted.size, maxConnections: this.#limits.maxConnections },
            'events feed: more calls than the connection and subscription limits allow; the rest rely on polling',
          );
          this.#rosterLimitWarned = true;
        }
        break;
      }
      this.#slots[slot]?.rosters.set(callId, this.#nextIndex++);
    }
    this.#slots.forEach((slot, i) => {
      // A further connection left without rosters is closed (CMS allows few); the first always carries `calls`.
      if (i > 0 && slot.rosters.size === 0) {
        clearTimeout(slot.timer);
        slot.timer = undefined;
        slot.connection?.close();
        return;
      }
      if (slot.connection && !slot.connection.closed) this.#send(slot, i);
      else if (!slot.opening && !slot.timer && (i === 0 || slot.rosters.size > 0)) void this.#open(i);
    });
  }

  #slotWithRoom(): number | undefined {
    for (let i = 0; i < this.#limits.maxConnections; i++) {
      const slot = this.#slot(i);
      const room = this.#limits.maxSubscriptions - (i === 0 ? 1 : 0);
      if (slot.rosters.size < room) return i;
    }
    return undefined;
  }

  #slot(i: number): Slot {
    let slot = this.#slots[i];
    if (!slot) {
      slot = {
        connection: null,
        rosters: new Map(),
        active: new Set(),
        awaitingFullList: new Set(),
        attempt: 0,
        timer: undefined,
        opening: false,
        sent: '',
      };
      this.#slots[i] = slot;
    }
    return slot;
  }

  #send(slot: Slot, i: number): void {
    const subscriptions: SubscriptionRequest[] = [];
    if (i === 0) subscriptions.push({ index: CALLS_INDEX, type: 'calls', elements: CALL_ELEMENTS });
    for (const [call, index] of slot.rosters) subscriptions.push({ index, type: 'callRoster', call, elements: ROSTER_ELEMENTS });
    const text = JSON.stringify(subscriptions);
    if (text === slot.sent) return;
    slot.sent = text;
    slot.connection?.subscribe(subscriptions);
  }

  // ---- connections ----

  async #open(i: number): Promise<void> {
    const slot = this.#slot(i);
    if (this.#stopped || slot.opening) return;
    slot.opening = true;
    slot.timer = undefined;
    try {
      let token: string;
      try {
        token = await this.#tokens.current();
      } catch (err) {
        this.#setState({ apiReachable: !(err instanceof CmsApiError && err.status === 0), reason: describe(err) });
        throw err;
      }
      if (this.#state.apiReachable !== true) this.#setState({ apiReachable: true });
      const connection = await FeedConnection.open({
        node: this.node,
        baseUrl: this.#baseUrl,
        token,
        ca: this.#ca,
        handshakeTimeoutMs: this.#limits.handshakeTimeoutMs,
        log: this.#log,
        onMessage: (message) => this.#onMessage(i, message),
        onClose: (code) => this.#onClose(i, code),
      });
      if (this.#stopped) {
        connection.close();
        return;
      }
      slot.connection = connection;
      slot.attempt = 0;
      slot.sent = '';
      slot.active.clear();
      slot.awaitingFullList.clear();
      this.#log.info({ node: this.node, connection: i }, 'events feed connected');
      this.#send(slot, i);
    } catch (err) {
      // CMS forgets tokens when it restarts: a refused upgrade asks for a new one next time.
      if (err instanceof FeedUnavailableError && err.status === 401) this.#tokens.forget();
      if (i === 0) this.#setState({ live: false, reason: describe(err) });
      this.#log.debug({ node: this.node, connection: i, err }, 'events feed connection failed');
      this.#retry(i);
    } finally {
      slot.opening = false;
    }
  }

  #retry(i: number): void {
    const slot = this.#slot(i);
    if (this.#stopped || slot.timer) return;
    slot.attempt++;
    const delay = cappedExponentialDelay(slot.attempt, this.#limits.reconnectBaseMs, this.#limits.reconnectMaxMs);
    slot.timer = setTimeout(() => void this.#open(i), delay);
    slot.timer.unref();
  }

  #onClose(i: number, code: number): void {
    const slot = this.#slot(i);
    slot.connection = null;
    slot.sent = '';
    // A further connection with nothing left to carry was closed on purpose.
    if (this.#stopped || (i > 0 && slot.rosters.size === 0)) return;
    this.#log.warn({ node: this.node, connection: i, code }, 'events feed connection closed: reconnecting');
    if (i === 0) {
      this.#callsActive = false;
      this.#setState({ live: false, reason: `connection closed (${code})` });
    }
    if (i === 0 || slot.rosters.size > 0) this.#retry(i);
  }

  // ---- messages ----

  async #onMessage(i: number, message: CmsEventMessage): Promise<void> {
    const slot = this.#slot(i);
    switch (message.type) {
      case 'subscriptionUpdate':
        for (const sub of message.subscriptions) {
          if (i === 0 && sub.index === CALLS_INDEX && sub.type === 'calls') this.#onCallsState(sub.state);
          else if (sub.type === 'callRoster') this.#onRosterState(slot, sub.index, sub.state);
        }
        return;
      case 'callListUpdate':
        if (i === 0 && message.subscriptionIndex === CALLS_INDEX) await this.#onCallList(message.updates);
        return;
      case 'rosterUpdate': {
        const callId = callOf(slot, message.subscriptionIndex);
        if (!callId) return; // a subscription we have since dropped
        const fullList = slot.awaitingFullList.delete(message.subscriptionIndex);
        await this.#events.roster(this.node, callId, message.updates, fullList);
        return;
      }
      default:
        return;
    }
  }

  #onCallsState(state: string): void {
    if (state === 'active') {
      if (this.#callsActive) return;
      this.#callsActive = true;
      // The first list after (re)subscribing is complete: calls held from before that it does not name have ended.
      const before = new Set(this.calls.keys());
      if (this.#callsResync) clearTimeout(this.#callsResync.timer);
      const timer = setTimeout(() => void this.#finishCallsResync(), CALLS_RESYNC_MS);
      timer.unref();
      this.#callsResync = { before, timer };
      this.#setState({ live: true, reason: null });
    } else if (state === 'deactivated') {
      this.#callsActive = false;
      this.#setState({ live: false, reason: 'calls subscription deactivated' });
      // Not expected of CMS; starting over (reconnect, resubscribe, resync) is the way back.
      this.#slots[0]?.connection?.close();
    }
  }

  #onRosterState(slot: Slot, index: number, state: string): void {
    const callId = callOf(slot, index);
    if (!callId) return;
    // CMS repeats the state of every subscription after each subscribe request: only a new one starts with a full list.
    if (state === 'active' && !slot.active.has(index)) {
      slot.active.add(index);
      slot.awaitingFullList.add(index);
    }
    if (state === 'deactivated') {
      slot.rosters.delete(callId);
      slot.active.delete(index);
      slot.awaitingFullList.delete(index);
      this.#events.rosterDeactivated(this.node, callId);
    }
  }

  async #onCallList(updates: CallListEntry[]): Promise<void> {
    const gone: string[] = [];
    for (const u of updates) {
      if (u.updateType === 'remove') {
        this.calls.delete(u.call);
        gone.push(u.call);
      } else {
        const known = this.calls.get(u.call);
        const key = u.callCorrelator !== undefined ? u.callCorrelator || u.call : (known ?? u.call);
        this.calls.set(u.call, key);
        this.#callsResync?.before.delete(u.call);
        if (u.name !== undefined || u.callCorrelator !== undefined) {
          await this.#events.callListed(this.node, { id: u.call, name: u.name || null, callCorrelator: u.callCorrelator || null });
        }
      }
    }
    if (this.#callsResync) await this.#finishCallsResync();
    for (const callId of gone) await this.#events.callGone(this.node, callId, 'removed');
    this.#events.callsChanged(this.node);
  }

  async #finishCallsResync(): Promise<void> {
    const resync = this.#callsResync;
    if (!resync) return;
    this.#callsResync = null;
    clearTimeout(resync.timer);
    for (const callId of resync.before) {
      this.calls.delete(callId);
      await this.#events.callGone(this.node, callId, 'unlisted');
    }
    if (resync.before.size) this.#events.callsChanged(this.node);
  }

  #setState(change: Partial<FeedState>): void {
    const next = { ...this.#state, ...change };
    if (next.live === this.#state.live && next.apiReachable === this.#state.apiReachable && next.reason === this.#state.reason) return;
    this.#state = next;
    this.#events.stateChanged(this.node, next);
  }
}

function callOf(slot: Slot, index: number): string | undefined {
  for (const [callId, i] of slot.rosters) if (i === index) return callId;
  return undefined;
}

function describe(err: unknown): string {
  if (err instanceof FeedUnavailableError) return err.message;
  if (err instanceof CmsApiError) return `POST /api/v1/authTokens ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
