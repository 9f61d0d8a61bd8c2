import type { Level, PolicyConfig } from './types.ts';

/** The form fields of `PUT /api/v1/calls/<id>` that show a message to every participant. */
export interface ShowMessage {
  messageText: string;
  messagePosition: 'top' | 'middle' | 'bottom';
  /** Seconds as a decimal string, or `permanent`. */
  messageDuration: string;
}

/** The form fields that clear a call's message (`messageText=&messageDuration=0`). */
export interface ClearMessage {
  messageText: '';
  messageDuration: '0';
}

export type CallMessage = ShowMessage | ClearMessage;

export function clearMessage(): ClearMessage {
  return { messageText: '', messageDuration: '0' };
}

/**
 * The message a meeting at `level` should show, from `policy.messages` (defaults: "Security Level N", bottom,
 * permanent, applied by the config schema); with no level (no counted participant) the clear form, so a
 * message is never left standing on an empty meeting.
 */
export function desiredMessage(level: Level | null, policy: Pick<PolicyConfig, 'messages'>): CallMessage {
  if (level === null) return clearMessage();
  const { text, position, duration } = policy.messages[level];
  return { messageText: text, messagePosition: position, messageDuration: String(duration) };
}
