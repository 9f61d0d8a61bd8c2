/**
 * The JSON messages of the CMS events WebSocket (/events/v1, CMS 2.4+) that the feed sends and reads. Each side
 * numbers its own messages; every message from CMS is acknowledged with a messageAck carrying its messageId, or CMS
 * stops sending.
 */

type SubscriptionType = 'calls' | 'callRoster';

export interface SubscriptionRequest {
  index: number;
  type: SubscriptionType;
  /** callRoster: the call id on this bridge. */
  call?: string;
  elements: readonly string[];
}

/** `calls`: what groups a bridge's calls into meetings (every instance of a meeting shares its callCorrelator). */
export const CALL_ELEMENTS = ['name', 'callCorrelator'] as const;

/**
 * `callRoster`: Cisco's elements for the live view, and only those (docs/cms-interfaces.md §3). Cisco lists no lobby
 * element: whether a participant waits in the lobby comes from its CDRs (callLegUpdate deactivated) and polling
 * (status/deactivated). canMoveToLobby marks participants that need activation, i.e. non-activators.
 */
export const ROSTER_ELEMENTS = [
  'name',
  'uri',
  'state',
  'direction',
  'audioMuted',
  'videoMuted',
  'importance',
  'layout',
  'activeSpeaker',
  'presenter',
  'canMoveToLobby',
] as const;

type UpdateType = 'add' | 'update' | 'remove';
type Json = string | number | boolean | null;

export interface CallListEntry {
  call: string;
  updateType: UpdateType;
  name?: string;
  callCorrelator?: string;
}

/** One participant's update: only the elements that changed (all of them on `add`). */
export interface RosterEntry {
  participant: string;
  updateType: UpdateType;
  [element: string]: Json | undefined;
}

interface SubscriptionState {
  index: number;
  type: string;
  call?: string;
  state: 'pending' | 'active' | 'deactivated';
}

/** A message from CMS, as the feed uses it. */
export type CmsEventMessage =
  | { messageId: number; type: 'subscriptionUpdate'; subscriptions: SubscriptionState[] }
  | { messageId: number; type: 'callListUpdate'; subscriptionIndex: number; updates: CallListEntry[] }
  | { messageId: number; type: 'rosterUpdate'; subscriptionIndex: number; updates: RosterEntry[] }
  | { messageId: number; type: 'other'; original: string };

/** What one text frame from CMS is: a message to acknowledge, the answer to one of ours, or nothing we know. */
export type Incoming =
  | { kind: 'message'; message: CmsEventMessage }
  | { kind: 'ack'; messageId: number; status: string; reason: string | null }
  | { kind: 'unknown' };

export function parseIncoming(text: string): Incoming {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'unknown' };
  }
  if (!isObject(parsed)) return { kind: 'unknown' };
  if (parsed.type === 'messageAck' && isObject(parsed.messageAck) && typeof parsed.messageAck.messageId === 'number') {
    const { messageId, status, reason } = parsed.messageAck;
    return { kind: 'ack', messageId, status: String(status ?? ''), reason: typeof reason === 'string' ? reason : null };
  }
  if (parsed.type !== 'message' || !isObject(parsed.message) || typeof parsed.message.messageId !== 'number') return { kind: 'unknown' };
  const m = parsed.message;
  const messageId = m.messageId as number;
  switch (m.type) {
    case 'subscriptionUpdate':
      return {
        kind: 'message',
        message: { messageId, type: 'subscriptionUpdate', subscriptions: arrayOf<SubscriptionState>(m.subscriptions) },
      };
    case 'callListUpdate':
    case 'rosterUpdate':
      return {
        kind: 'message',
        message: {
          messageId,
          type: m.type,
          subscriptionIndex: Number(m.subscriptionIndex),
          updates: arrayOf(m.updates),
        } as CmsEventMessage,
      };
    default:
      return { kind: 'message', message: { messageId, type: 'other', original: String(m.type) } };
  }
}

export function subscribeRequest(messageId: number, subscriptions: readonly SubscriptionRequest[]): string {
  return JSON.stringify({ type: 'message', message: { messageId, type: 'subscribeRequest', subscriptions } });
}

export function messageAck(messageId: number): string {
  return JSON.stringify({ type: 'messageAck', messageAck: { messageId, status: 'success' } });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function arrayOf<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value.filter(isObject) as T[]) : [];
}
