import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { CmsNodeMode } from '@cms/db';
import type { Logger } from '@cms/observability';
import type { Redis } from '@cms/queue';

/** How long a lease lasts without renewal, unless the limits say otherwise (tests shorten it). */
export const FEED_LEASE_MS = 5000;

/** What the holder of a node's lease says of its feed: stored in the lease's value, read by the other replicas. */
export interface FeedHolder {
  replica: string;
  mode: CmsNodeMode;
  reason: string | null;
}

/**
 * Takes the lease when no one holds it (as SET NX PX would) or renews it when it is ours, storing what we say of our
 * feed; otherwise returns the holder's value. ARGV[1] is our replica id followed by a newline, so a value is ours
 * only when it starts with exactly that. One key: it works on a Redis Cluster under any prefix.
 * Returns {1} when the lease is ours now, {0, value} when another replica holds it.
 */
const CLAIM = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) ~= ARGV[1] then return {0, v} end
redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2], 'PX', ARGV[3])
return {1}
`;

/** Deletes the lease only if it is still ours (it may have expired and been taken meanwhile). */
const RELEASE = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** How long close() waits for the release before leaving the lease to expire (Redis may be away). */
const RELEASE_WAIT_MS = 1000;

/** This process's name in the leases' values: readable in /readyz and logs, unique per start. */
export function replicaId(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/** The lease's Redis key: under the queue prefix, so a hash-tagged prefix puts it in the same slot as the rest. */
function feedLeaseKey(prefix: string, node: string): string {
  return `${prefix}:cms-events-lease:${node}`;
}

interface FeedLeaseOptions {
  redis: Redis;
  prefix: string;
  node: string;
  replica: string;
  leaseMs: number;
  log: Logger;
  /** The lease is ours now: start following the node's feed. */
  acquired(): void;
  /** The lease is no longer ours (taken, expired, or not renewed in time): stop the feed at once. */
  lost(reason: string): void;
  /** What we know of the lease changed while we do not hold it (holder, its mode, or that no one holds it). */
  observed(): void;
}

/**
 * Which replica follows one node's events feed. CMS takes at most five events connections per node, and two
 * replicas following the same feed would store every roster change twice, so one replica at a time holds a lease
 * in Redis (`<prefix>:cms-events-lease:<node>`, expiring after `leaseMs`) and renews it every fifth of that; the
 * others try to take it at the same pace, so a holder that dies (kill -9) is replaced within about `leaseMs` plus
 * one fifth. Fencing: a holder that cannot renew (the lease is someone else's, or Redis refuses, or no renewal has
 * come back by four fifths of the lease) stops its feed before the lease can expire, so two replicas never follow
 * the same node's feed knowingly at once. The holder's feed mode rides in the lease's value, so the other
 * replicas report what the holder sees instead of their own absence of a feed.
 */
export class NodeFeedLease {
  readonly #o: FeedLeaseOptions;
  readonly #key: string;
  readonly #owner: string;
  #held = false;
  #holder: FeedHolder | null = null;
  /** Why we know of no holder (Redis could not be asked), or null. */
  #unknown: string | null = 'not asked yet';
  #published: { mode: CmsNodeMode; reason: string | null } = { mode: 'polling', reason: 'connecting' };
  #timer: NodeJS.Timeout | undefined;
  #fence: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #ticks: Promise<void> = Promise.resolve();
  #closed = false;
  #observedBefore = false;

  constructor(options: FeedLeaseOptions) {
    this.#o = options;
    this.#key = feedLeaseKey(options.prefix, options.node);
    this.#owner = `${options.replica}\n`;
  }

  /** This replica holds the lease (and follows the node's feed). */
  get held(): boolean {
    return this.#held;
  }

  /** The other replica holding the lease, as its last renewal described its feed; null when we hold it or no one does. */
  get holder(): FeedHolder | null {
    return this.#holder;
  }

  /** Why no holder is known (null when one is known, or when we hold the lease). */
  get unknown(): string | null {
    return this.#unknown;
  }

  /** Whether an earlier attempt saw the lease (ours or another's) before this acquisition: a takeover, not a start. */
  get takeover(): boolean {
    return this.#observedBefore;
  }

  start(): void {
    void this.#queueTick();
    this.#timer = setInterval(() => {
      // A renewal still in flight (Redis away: the worker connection waits) is not stacked on; the fence covers it.
      if (this.#inFlight === 0) void this.#queueTick();
    }, this.#renewEveryMs());
    this.#timer.unref();
  }

  /** Stores what our feed's mode is now in the lease (when we hold it); resolves once Redis has it or refused. */
  publish(mode: CmsNodeMode, reason: string | null): Promise<void> {
    // The mode is re-evaluated at every contact with the node (each write): only a change is worth a round trip.
    const same = this.#published.mode === mode && this.#published.reason === reason;
    this.#published = { mode, reason };
    if (!this.#held || same) return Promise.resolve();
    return this.#queueTick();
  }

  /** Stops renewing and gives the lease up (when ours), so another replica takes the feed over at once. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#fence);
    if (!this.#held) return;
    this.#held = false;
    let timer: NodeJS.Timeout | undefined;
    const release = this.#o.redis.eval(RELEASE, 1, this.#key, this.#owner).catch((err: unknown) => {
      this.#o.log.warn({ node: this.#o.node, err }, 'events feed lease: could not release it; it expires on its own');
    });
    const wait = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, RELEASE_WAIT_MS);
    });
    await Promise.race([release, wait]);
    clearTimeout(timer);
  }

  #renewEveryMs(): number {
    return Math.max(10, Math.floor(this.#o.leaseMs / 5));
  }

  #queueTick(): Promise<void> {
    this.#inFlight++;
    this.#ticks = this.#ticks
      .then(() => this.#tick())
      // A throwing listener must not break the chain: every later renewal waits on it.
      .catch((err: unknown) => this.#o.log.error({ node: this.#o.node, err }, 'events feed lease: a renewal failed unexpectedly'))
      .finally(() => this.#inFlight--);
    return this.#ticks;
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    // The lease runs from when Redis set it, which is after this: fencing from here errs on the safe side.
    const sentAt = Date.now();
    let answer: unknown;
    try {
      answer = await this.#o.redis.eval(CLAIM, 1, this.#key, this.#owner, JSON.stringify(this.#published), this.#o.leaseMs);
    } catch (err) {
      if (this.#closed) return;
      const why = `Redis refused the events feed lease (${err instanceof Error ? err.message : String(err)})`;
      if (this.#held) this.#lose(why);
      else this.#observe(null, why);
      return;
    }
    if (this.#closed) return;
    const [ours, value] = answer as [number, string?];
    if (ours === 1) {
      this.#armFence(sentAt);
      if (!this.#held) {
        this.#held = true;
        this.#holder = null;
        this.#unknown = null;
        this.#o.log.info({ node: this.#o.node, replica: this.#o.replica }, 'events feed lease taken: this replica follows the node');
        this.#o.acquired();
        this.#observedBefore = true;
      }
      return;
    }
    if (this.#held) this.#lose('another replica holds the events feed lease');
    this.#observe(parseHolder(value ?? ''), null);
  }

  /** Stops the feed when the lease may expire before the next renewal comes back (four fifths of it unrenewed). */
  #armFence(sentAt: number): void {
    clearTimeout(this.#fence);
    const at = sentAt + this.#o.leaseMs - this.#renewEveryMs();
    this.#fence = setTimeout(() => this.#lose('the events feed lease was not renewed in time'), Math.max(0, at - Date.now()));
    this.#fence.unref();
  }

  #lose(reason: string): void {
    clearTimeout(this.#fence);
    if (!this.#held) return;
    this.#held = false;
    // Who holds it now is unknown until Redis answers again.
    this.#unknown = reason;
    // Taken again later, the lease must not say `events` before the new feed is live.
    this.#published = { mode: 'polling', reason: 'connecting' };
    this.#o.log.warn(
      { node: this.#o.node, replica: this.#o.replica, reason },
      'events feed lease lost: this replica stops following the node',
    );
    this.#o.lost(reason);
  }

  #observe(holder: FeedHolder | null, unknown: string | null): void {
    this.#observedBefore = true;
    const same =
      this.#unknown === unknown &&
      this.#holder?.replica === holder?.replica &&
      this.#holder?.mode === holder?.mode &&
      this.#holder?.reason === holder?.reason;
    this.#holder = holder;
    this.#unknown = unknown;
    if (!same) this.#o.observed();
  }
}

/** `replica\n{"mode":…,"reason":…}` → FeedHolder; a value we cannot read still names its holder. */
function parseHolder(value: string): FeedHolder {
  const newline = value.indexOf('\n');
  const replica = newline < 0 ? value : value.slice(0, newline);
  try {
    const { mode, reason } = JSON.parse(value.slice(newline + 1)) as { mode: CmsNodeMode; reason: string | null };
    return { replica, mode, reason: reason ?? null };
  } catch {
    return { replica, mode: 'polling', reason: 'its lease does not say how it follows the node' };
  }
}
