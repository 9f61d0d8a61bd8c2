import type { WebSocket } from 'ws';
import type { Change } from '../model/changes.ts';
import type { Cluster } from '../model/cluster.ts';
import type { Call } from '../model/types.ts';
import { callElementValues, rosterElementValues } from './elements.ts';

type SubscriptionType = 'calls' | 'callInfo' | 'callRoster';
type SubscriptionState = 'pending' | 'active' | 'deactivated';
type UpdateType = 'add' | 'update' | 'remove';

interface Subscription {
  index: number;
  type: SubscriptionType;
  /** callInfo / callRoster: the call id on this bridge. */
  call: string | null;
  elements: string[];
  state: SubscriptionState;
  /** Coalesced updates not yet sent: object id → update type (values are read when the message is built). */
  pending: Map<string, UpdateType>;
  /** callInfo: a fresh callInfoUpdate is due. */
  infoDue: boolean;
  /**
   * The element values last sent per object (call or participant id; '' for callInfo): an update carries only the
   * elements that changed since, as the Events Guide says, and one where nothing subscribed changed is not sent.
   */
  sent: Map<string, Record<string, Json>>;
}

type Json = string | number | boolean;

type OutgoingMessage = Record<string, unknown> & { type: string };

export interface ConnectionStats {
  id: number;
  subscriptions: number;
  sent: number;
  received: number;
  acknowledged: number;
  /** messageId CMS is waiting to see acknowledged, or null. */
  awaitingAck: number | null;
  /** Updates held back because the client has not acknowledged the previous message. */
  pendingUpdates: number;
}

export interface ConnectionLimits {
  maxSubscriptions: number;
}

/**
 * One events WebSocket. CMS sends a message and then nothing more until the client acknowledges it with a
 * messageAck carrying its messageId; meanwhile changes are coalesced per subscription (add+update = add,
 * add+remove = nothing), so a client that stops acknowledging receives no further updates.
 */
export class EventsConnection {
  readonly id: number;
  readonly #socket: WebSocket;
  readonly #cluster: Cluster;
  readonly #bridge: string;
  readonly #limits: ConnectionLimits;
  readonly #subscriptions = new Map<number, Subscription>();
  readonly #control: OutgoingMessage[] = [];
  #awaitingAck: number | null = null;
  #nextMessageId = 1;
  #rotation = 0;
  #closed = false;
  readonly #stats = { sent: 0, received: 0, acknowledged: 0 };

  constructor(id: number, socket: WebSocket, cluster: Cluster, bridge: string, limits: ConnectionLimits) {
    this.id = id;
    this.#socket = socket;
    this.#cluster = cluster;
    this.#bridge = bridge;
    this.#limits = limits;
    socket.on('message', (data, isBinary) => {
      if (isBinary) {
        socket.close(1003, 'binary frames are not supported');
        return;
      }
      this.#onText(data.toString());
    });
    // CMS does not do ping/pong: a client that relies on it finds out here rather than in production.
    socket.on('ping', () => socket.close(1003, 'ping/pong is not supported'));
    socket.on('close', () => {
      this.#closed = true;
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  stats(): ConnectionStats {
    let pendingUpdates = this.#control.length;
    for (const s of this.#subscriptions.values()) pendingUpdates += s.pending.size + (s.infoDue ? 1 : 0);
    return { id: this.id, subscriptions: this.#subscriptions.size, ...this.#stats, awaitingAck: this.#awaitingAck, pendingUpdates };
  }

  close(code = 1001, reason = 'going away'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close(code, reason);
  }

  /** Drops the TCP connection without a close frame, as a network failure would. */
  terminate(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.terminate();
  }

  /** A model change on the cluster: queue what this connection's subscriptions must hear about. */
  onChange(change: Change): void {
    if (this.#closed) return;
    let touched = false;
    for (const sub of this.#subscriptions.values()) {
      if (sub.state !== 'active') continue;
      touched = this.#apply(sub, change) || touched;
    }
    if (touched) this.#flush();
  }

  #apply(sub: Subscription, change: Change): boolean {
    switch (change.kind) {
      case 'callStarted':
        if (sub.type !== 'calls' || change.bridge !== this.#bridge) return false;
        queue(sub, change.call.id, 'add');
        return true;
      case 'callUpdated':
        if (change.bridge !== this.#bridge || !change.elements.some((e) => sub.elements.includes(e))) return false;
        if (sub.type === 'calls') {
          queue(sub, change.call.id, 'update');
          return true;
        }
        if (sub.type === 'callInfo' && sub.call === change.call.id) {
          sub.infoDue = true;
          return true;
        }
        return false;
      case 'callEnded':
        if (change.bridge !== this.#bridge) return false;
        if (sub.type === 'calls') {
          queue(sub, change.call.id, 'remove');
          return true;
        }
        if (sub.call === change.call.id) {
          // The call left this bridge: the client must move its subscription to a bridge that still hosts it.
          sub.state = 'deactivated';
          sub.pending.clear();
          sub.infoDue = false;
          this.#control.push({ type: 'subscriptionUpdate', subscriptions: [describe(sub)] });
          return true;
        }
        return false;
      case 'participantAdded':
      case 'participantUpdated':
      case 'participantRemoved': {
        if (sub.type !== 'callRoster' || !sub.call) return false;
        if (change.meeting.instances.get(this.#bridge)?.id !== sub.call) return false;
        const type: UpdateType = change.kind === 'participantAdded' ? 'add' : change.kind === 'participantRemoved' ? 'remove' : 'update';
        queue(sub, change.participant.id, type);
        return true;
      }
      default:
        return false;
    }
  }

  #onText(text: string): void {
    this.#stats.received++;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return; // CMS ignores what it cannot parse
    }
    const envelope = parsed as { type?: string; messageAck?: { messageId?: number }; message?: Record<string, unknown> };
    if (envelope.type === 'messageAck') {
      if (envelope.messageAck?.messageId === this.#awaitingAck && this.#awaitingAck !== null) {
        this.#stats.acknowledged++;
        this.#awaitingAck = null;
        this.#flush();
      }
      return;
    }
    if (envelope.type === 'message' && envelope.message) this.#onClientMessage(envelope.message);
  }

  #onClientMessage(message: Record<string, unknown>): void {
    const messageId = message.messageId;
    if (message.type !== 'subscribeRequest') {
      this.#ack(messageId, 'failure', 'unsupportedMessageType');
      return;
    }
    const requested = message.subscriptions;
    if (!Array.isArray(requested)) {
      this.#ack(messageId, 'failure', 'invalidSubscriptions');
      return;
    }
    if (requested.length > this.#limits.maxSubscriptions) {
      this.#ack(messageId, 'failure', 'tooManySubscriptions');
      return;
    }
    const parsed: Subscription[] = [];
    for (const raw of requested as Record<string, unknown>[]) {
      const sub = parseSubscription(raw);
      if (!sub) {
        this.#ack(messageId, 'failure', 'invalidSubscriptions');
        return;
      }
      parsed.push(sub);
    }
    this.#ack(messageId, 'success');
    this.#replaceSubscriptions(parsed);
  }

  /** A subscribe request carries the complete set: missing indexes are torn down, changed ones restart. */
  #replaceSubscriptions(requested: Subscription[]): void {
    const next = new Map<number, Subscription>();
    const announced: Subscription[] = [];
    // The same resource under two indexes: the later one wins and the earlier is torn down.
    const byResource = new Map<string, Subscription>();
    for (const sub of requested) byResource.set(`${sub.type}:${sub.call ?? ''}`, sub);
    for (const sub of byResource.values()) {
      const old = this.#subscriptions.get(sub.index);
      if (old && sameResource(old, sub) && old.state !== 'deactivated') {
        old.elements = sub.elements;
        next.set(sub.index, old);
        announced.push(old);
        continue;
      }
      const call = sub.call ? this.#localCall(sub.call) : undefined;
      sub.state = sub.type === 'calls' || call ? 'active' : 'deactivated';
      next.set(sub.index, sub);
      announced.push(sub);
      if (sub.state === 'active') this.#seed(sub, call);
    }
    this.#subscriptions.clear();
    for (const [index, sub] of next) this.#subscriptions.set(index, sub);
    if (announced.length > 0) this.#control.unshift({ type: 'subscriptionUpdate', subscriptions: announced.map(describe) });
    this.#flush();
  }

  /** A new subscription starts with the current state. */
  #seed(sub: Subscription, call: Call | undefined): void {
    if (sub.type === 'calls') {
      for (const c of this.#cluster.bridge(this.#bridge).calls.values()) queue(sub, c.id, 'add');
    } else if (sub.type === 'callInfo') {
      sub.infoDue = true;
    } else if (call) {
      for (const p of call.meeting.participants.values()) queue(sub, p.id, 'add');
    }
  }

  #localCall(id: string): Call | undefined {
    return this.#cluster.bridges.get(this.#bridge)?.calls.get(id);
  }

  #ack(messageId: unknown, status: 'success' | 'failure', reason?: string): void {
    const ack: Record<string, unknown> = { messageId, status };
    if (reason) ack.reason = reason;
    this.#send({ type: 'messageAck', messageAck: ack });
  }

  #flush(): void {
    if (this.#closed || this.#awaitingAck !== null) return;
    const message = this.#control.shift() ?? this.#nextUpdate();
    if (!message) return;
    const messageId = this.#nextMessageId++;
    this.#awaitingAck = messageId;
    this.#stats.sent++;
    this.#send({ type: 'message', message: { messageId, ...message } });
  }

  #nextUpdate(): OutgoingMessage | undefined {
    const subs = [...this.#subscriptions.values()];
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[(this.#rotation + i) % subs.length] as Subscription;
      const message = this.#buildUpdate(sub);
      if (message) {
        this.#rotation = (this.#rotation + i + 1) % subs.length;
        return message;
      }
    }
    return undefined;
  }

  #buildUpdate(sub: Subscription): OutgoingMessage | undefined {
    if (sub.state !== 'active') return undefined;
    if (sub.type === 'callInfo') {
      if (!sub.infoDue || !sub.call) return undefined;
      sub.infoDue = false;
      const call = this.#localCall(sub.call);
      if (!call) return undefined;
      const changed = changedElements(sub, '', callElementValues(call, sub.elements), 'update');
      if (!changed) return undefined;
      return { type: 'callInfoUpdate', subscriptionIndex: sub.index, callInfo: { call: call.id, ...changed } };
    }
    if (sub.pending.size === 0) return undefined;
    const entries = [...sub.pending];
    sub.pending.clear();
    if (sub.type === 'calls') {
      const updates = entries.flatMap(([id, updateType]) => {
        const call = this.#localCall(id);
        if (updateType === 'remove' || !call) return [removal(sub, 'call', id)];
        const changed = changedElements(sub, id, callElementValues(call, sub.elements), updateType);
        return changed ? [{ call: id, updateType, ...changed }] : [];
      });
      return updates.length ? { type: 'callListUpdate', subscriptionIndex: sub.index, updates } : undefined;
    }
    const call = sub.call ? this.#localCall(sub.call) : undefined;
    const updates = entries.flatMap(([id, updateType]) => {
      const participant = call?.meeting.participants.get(id);
      if (updateType === 'remove' || !participant) return [removal(sub, 'participant', id)];
      const changed = changedElements(sub, id, rosterElementValues(this.#cluster, participant, sub.elements), updateType);
      return changed ? [{ participant: id, updateType, ...changed }] : [];
    });
    return updates.length ? { type: 'rosterUpdate', subscriptionIndex: sub.index, updates } : undefined;
  }

  #send(payload: unknown): void {
    if (this.#closed) return;
    this.#socket.send(JSON.stringify(payload));
  }
}

/**
 * What an update tells about one object: every subscribed element when it is new to the client (`add`), otherwise
 * only the elements whose value differs from what was last sent; null when nothing the client asked for changed.
 */
function changedElements(sub: Subscription, id: string, values: Record<string, Json>, updateType: UpdateType): Record<string, Json> | null {
  const before = sub.sent.get(id);
  sub.sent.set(id, values);
  if (updateType === 'add' || !before) return values;
  const changed: Record<string, Json> = {};
  let any = false;
  for (const [element, value] of Object.entries(values)) {
    if (before[element] === value) continue;
    changed[element] = value;
    any = true;
  }
  return any ? changed : null;
}

function removal(sub: Subscription, key: 'call' | 'participant', id: string): Record<string, string> {
  sub.sent.delete(id);
  return { [key]: id, updateType: 'remove' };
}

function queue(sub: Subscription, id: string, type: UpdateType): void {
  const existing = sub.pending.get(id);
  if (existing === 'add' && type === 'update') return;
  if (existing === 'add' && type === 'remove') {
    sub.pending.delete(id);
    return;
  }
  sub.pending.set(id, existing === 'remove' && type === 'add' ? 'update' : type);
}

function parseSubscription(raw: Record<string, unknown>): Subscription | null {
  const { index, type, call, elements } = raw;
  if (typeof index !== 'number' || !Number.isInteger(index)) return null;
  if (type !== 'calls' && type !== 'callInfo' && type !== 'callRoster') return null;
  if (type !== 'calls' && typeof call !== 'string') return null;
  const list = Array.isArray(elements) ? elements.filter((e): e is string => typeof e === 'string') : [];
  return {
    index,
    type,
    call: type === 'calls' ? null : (call as string),
    elements: list,
    state: 'pending',
    pending: new Map(),
    infoDue: false,
    sent: new Map(),
  };
}

function sameResource(a: Subscription, b: Subscription): boolean {
  return a.type === b.type && a.call === b.call;
}

function describe(sub: Subscription): Record<string, unknown> {
  const out: Record<string, unknown> = { index: sub.index, type: sub.type };
  if (sub.call) out.call = sub.call;
  out.elements = sub.elements;
  out.state = sub.state;
  return out;
}
