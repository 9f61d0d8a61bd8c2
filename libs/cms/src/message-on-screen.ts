import type { CallUpdate, CmsCall } from './types.ts';

/** The on-screen message a call should show, as stored in call_messages (text values, as CMS takes them). */
export interface DesiredCallMessage {
  messageText: string;
  /** top | middle | bottom; null leaves CMS's position alone. */
  messagePosition: string | null;
  /** Seconds, "permanent", or "0" (clear). */
  messageDuration: string;
}

/** A desired message that means "show nothing": empty text or a zero duration. */
export function isClearMessage(message: DesiredCallMessage): boolean {
  return message.messageText === '' || normaliseDuration(message.messageDuration) === '0';
}

/** The PUT /api/v1/calls/<id> fields for a desired message. Clearing is `messageText=&messageDuration=0`. */
export function callMessageUpdate(message: DesiredCallMessage): CallUpdate {
  if (isClearMessage(message)) return { messageText: '', messageDuration: 0 };
  const update: CallUpdate = { messageText: message.messageText, messageDuration: normaliseDuration(message.messageDuration) };
  if (message.messagePosition) update.messagePosition = message.messagePosition as CallUpdate['messagePosition'];
  return update;
}

/** Whether participants currently see any message on this call (per GET /api/v1/calls/<id>). */
export function callMessageVisible(call: CmsCall): boolean {
  const text = call.messageText ?? '';
  const duration = normaliseDuration(call.messageDuration ?? '');
  if (text === '' || duration === '0') return false;
  // A text without a duration may be showing: when in doubt, say it shows, so a clear is written rather than skipped.
  if (duration === 'permanent' || duration === '') return true;
  // CMS reports messageTimeRemaining for timed messages; without it, trust the duration.
  return call.messageTimeRemaining === undefined || Number(call.messageTimeRemaining) > 0;
}

/**
 * Whether CMS already shows exactly the desired message (so a PUT would change nothing on screen). A timed
 * message that has run out does not count: writing it again shows it again, which is what a new version asks for.
 */
export function callShowsMessage(call: CmsCall, message: DesiredCallMessage): boolean {
  const visible = callMessageVisible(call);
  if (isClearMessage(message)) return !visible;
  if (!visible) return false;
  if ((call.messageText ?? '') !== message.messageText) return false;
  if (normaliseDuration(call.messageDuration ?? '') !== normaliseDuration(message.messageDuration)) return false;
  return !message.messagePosition || call.messagePosition === message.messagePosition;
}

/** "30", "030" and " 30 " are the same duration; "permanent" stays as is. */
function normaliseDuration(value: string | number): string {
  const text = String(value).trim();
  return /^\d+$/.test(text) ? String(Number(text)) : text;
}
