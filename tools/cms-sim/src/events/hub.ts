import type { WebSocket } from 'ws';
import type { Change } from '../model/changes.ts';
import type { Cluster } from '../model/cluster.ts';
import { type ConnectionStats, EventsConnection } from './connection.ts';
import { TokenStore } from './tokens.ts';

export interface EventsLimits {
  maxConnections: number;
  maxSubscriptions: number;
  tokenTtlMs: number;
}

export interface EventsStats {
  connections: ConnectionStats[];
  /** WebSocket upgrades refused because the bridge already had maxConnections. */
  refusedConnections: number;
  /** WebSocket connections accepted since the simulator started (open or since closed). */
  acceptedConnections: number;
  /** The most connections that were open at once (several clients sharing the bridge's limit show here). */
  peakConnections: number;
}

/** One bridge's events service: auth tokens, at most `maxConnections` WebSockets, change fan-out. */
export class EventsHub {
  readonly tokens: TokenStore;
  readonly limits: EventsLimits;
  readonly #cluster: Cluster;
  readonly #bridge: string;
  readonly #connections = new Set<EventsConnection>();
  #nextId = 1;
  #refused = 0;
  #accepted = 0;
  #peak = 0;
  #enabled = true;

  constructor(cluster: Cluster, bridge: string, limits: EventsLimits) {
    this.#cluster = cluster;
    this.#bridge = bridge;
    this.limits = limits;
    this.tokens = new TokenStore(limits.tokenTtlMs);
  }

  /** false: /events/v1 answers 404, as on a CMS without the events service (or with its port blocked). */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Turns the events service off (open connections drop) or on again. */
  setEnabled(on: boolean): void {
    this.#enabled = on;
    if (!on) this.dropConnections();
  }

  /** Every connection drops without a close handshake (a network drop); tokens stay valid, unlike a restart. */
  dropConnections(): void {
    for (const connection of this.#connections) connection.terminate();
    this.#connections.clear();
  }

  get full(): boolean {
    return this.#openConnections() >= this.limits.maxConnections;
  }

  refuse(): void {
    this.#refused++;
  }

  accept(socket: WebSocket): EventsConnection | null {
    if (this.full) {
      this.#refused++;
      socket.close(1013, 'too many connections');
      return null;
    }
    const connection = new EventsConnection(this.#nextId++, socket, this.#cluster, this.#bridge, {
      maxSubscriptions: this.limits.maxSubscriptions,
    });
    this.#connections.add(connection);
    this.#accepted++;
    this.#peak = Math.max(this.#peak, this.#openConnections());
    socket.on('close', () => this.#connections.delete(connection));
    return connection;
  }

  handle(change: Change): void {
    for (const connection of this.#connections) connection.onChange(change);
  }

  /** Restart or shutdown: every connection drops and tokens are forgotten. */
  closeAll(code = 1001, reason = 'going away'): void {
    for (const connection of this.#connections) connection.close(code, reason);
    this.#connections.clear();
    this.tokens.clear();
  }

  stats(): EventsStats {
    return {
      connections: [...this.#connections].filter((c) => !c.closed).map((c) => c.stats()),
      refusedConnections: this.#refused,
      acceptedConnections: this.#accepted,
      peakConnections: this.#peak,
    };
  }

  #openConnections(): number {
    let n = 0;
    for (const c of this.#connections) if (!c.closed) n++;
    return n;
  }
}
