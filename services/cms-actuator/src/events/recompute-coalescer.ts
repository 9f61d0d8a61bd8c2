import type { RecomputeRequest } from '../reconcile/node-reconciler.ts';

/**
 * Roster changes of one meeting that arrive within this long of its first one go to the policy worker as one
 * recompute. A join is usually an `add` then a state change or two, and a busy meeting's roster changes come one
 * after another (each message is acknowledged after it is stored): one recompute per change cost the policy worker
 * a transaction each, and their locks held the meeting's CDR decisions back (bench:policy). The recompute reads what
 * is stored when it runs, so a later one covers every change stored before it.
 */
const RECOMPUTE_COALESCE_MS = 150;

/**
 * The grace of participants only the roster shows (2 s, load-meetings.ts) with a margin: their recompute is due this
 * long after they were stored, rounded up to the next LATER_BUCKET_MS so that the joins of a burst share one.
 */
const UNCORROBORATED_RECOMPUTE_MS = 2500;
const LATER_BUCKET_MS = 500;

interface Pending {
  callIds: Set<string>;
  /**
   * Whose live view changed, when every request of the window said (the policy worker reads only their legs); null
   * when one did not (it reads every leg of the calls).
   */
  live: Set<string> | null;
  reasons: Set<string>;
  /** After the grace: the roster-only participants it is for (skipped when their CDRs have named them all). */
  participants: Set<string>;
  timer: NodeJS.Timeout;
}

/**
 * Collects the recompute requests of the events feed per meeting and sends each meeting's once its window closes
 * (a fixed window from the first request, not extended by later ones: a busy meeting is still recomputed at least
 * that often). Requests that fail are logged by `send`'s caller; the next change or reconciliation asks again.
 */
export class RecomputeCoalescer {
  readonly #send: RecomputeRequest;
  readonly #windowMs: number;
  readonly #onError: (err: unknown, callIds: string[]) => void;
  readonly #anyRosterOnly: (callIds: string[], participants: string[]) => Promise<boolean>;
  readonly #pending = new Map<string, Pending>();
  constructor(options: {
    send: RecomputeRequest;
    windowMs?: number | undefined;
    onError: (err: unknown, callIds: string[]) => void;
    /** Whether any of these participants is still shown by the roster alone (roster-store.ts anyRosterOnly). */
    anyRosterOnly: (callIds: string[], participants: string[]) => Promise<boolean>;
  }) {
    this.#send = options.send;
    this.#anyRosterOnly = options.anyRosterOnly;
    this.#windowMs = options.windowMs ?? RECOMPUTE_COALESCE_MS;
    this.#onError = options.onError;
  }

  /**
   * Recompute the meeting `meetingKey` (its calls `callIds`) once the window closes; `live`: the participant and row
   * ids whose live view changed, when known.
   */
  now(meetingKey: string, callIds: readonly string[], reason: string, live?: readonly string[]): void {
    this.#add(`now:${meetingKey}`, callIds, [], live ?? null, reason, this.#windowMs);
  }

  /** Recompute it once participants stored now have passed the policy's grace for roster-only participants. */
  afterGrace(meetingKey: string, callIds: readonly string[], participants: readonly string[], reason: string): void {
    const due = Math.ceil((Date.now() + UNCORROBORATED_RECOMPUTE_MS) / LATER_BUCKET_MS) * LATER_BUCKET_MS;
    this.#add(`later:${due}:${meetingKey}`, callIds, participants, participants, reason, due - Date.now());
  }

  /**
   * The actuator is stopping: what the feed stored still gets decided. Recomputes due after the grace are dropped
   * (sent now they would not count their participants yet); reconciliation after the restart reads those calls.
   */
  async flush(): Promise<void> {
    const keys = [...this.#pending.keys()];
    for (const key of keys.filter((k) => k.startsWith('later:'))) {
      clearTimeout(this.#pending.get(key)?.timer);
      this.#pending.delete(key);
    }
    await Promise.all(keys.filter((k) => k.startsWith('now:')).map((key) => this.#flush(key)));
  }

  #add(
    key: string,
    callIds: readonly string[],
    participants: readonly string[],
    live: readonly string[] | null,
    reason: string,
    delayMs: number,
  ): void {
    const pending = this.#pending.get(key);
    if (pending) {
      for (const id of callIds) pending.callIds.add(id);
      for (const id of participants) pending.participants.add(id);
      if (!live) pending.live = null;
      else for (const id of live) pending.live?.add(id);
      pending.reasons.add(reason);
      return;
    }
    const timer = setTimeout(() => void this.#flush(key), Math.max(0, delayMs));
    timer.unref();
    this.#pending.set(key, {
      callIds: new Set(callIds),
      live: live ? new Set(live) : null,
      participants: new Set(participants),
      reasons: new Set([reason]),
      timer,
    });
  }

  async #flush(key: string): Promise<void> {
    const pending = this.#pending.get(key);
    if (!pending) return;
    this.#pending.delete(key);
    clearTimeout(pending.timer);
    const callIds = [...pending.callIds].sort();
    try {
      // Their CDRs came within the grace (as they normally do) and the CDR path decided with them: nothing to redo.
      if (pending.participants.size && !(await this.#anyRosterOnly(callIds, [...pending.participants]))) return;
      await this.#send(callIds, [...pending.reasons].sort().join(','), pending.live ? [...pending.live].sort() : undefined);
    } catch (err) {
      this.#onError(err, callIds);
    }
  }
}
