import { SimulatorError } from '../errors.ts';
import type { BridgeState } from '../model/bridge.ts';
import type { Change } from '../model/changes.ts';
import type { ResolvedCdrOptions } from '../options.ts';
import type { SimClock } from '../util/clock.ts';
import { recordFor, type SimRecord } from './records.ts';
import { ReceiverSender, type ReceiverStats } from './sender.ts';

/** CMS accepts at most four CDR receivers per Call Bridge. */
export const MAX_CDR_RECEIVERS = 4;

export interface CdrReceiver {
  id: string;
  uri: string;
  sender: ReceiverSender;
}

export interface CdrAlarm {
  id: string;
  type: 'cdrConnectionFailure';
  /** Real ms when the alarm was raised. */
  since: number;
}

export class TooManyReceiversError extends SimulatorError {
  constructor() {
    super(`a Call Bridge takes at most ${MAX_CDR_RECEIVERS} CDR receivers`);
    this.name = 'TooManyReceiversError';
  }
}

/**
 * One bridge's CDR production: turns model changes into records (correlatorIndex per session, shared by all
 * receivers) and hands each to every receiver's sender. Raises cdrConnectionFailure while any receiver fails.
 */
export class BridgeCdr {
  readonly bridge: BridgeState;
  readonly #options: ResolvedCdrOptions;
  readonly #clock: SimClock;
  readonly #clustered: boolean;
  readonly #newId: () => string;
  readonly #log: SimRecord[] = [];
  readonly #logLimit: number;
  #receivers: CdrReceiver[] = [];
  #nextCorrelatorIndex = 0;
  #alarm: CdrAlarm | null = null;
  #outage = false;

  constructor(p: {
    bridge: BridgeState;
    options: ResolvedCdrOptions;
    clock: SimClock;
    clustered: boolean;
    newId: () => string;
    logLimit: number;
    receivers: string[];
  }) {
    this.bridge = p.bridge;
    this.#options = p.options;
    this.#clock = p.clock;
    this.#clustered = p.clustered;
    this.#newId = p.newId;
    this.#logLimit = p.logLimit;
    this.setReceivers(p.receivers);
  }

  /** Index the next record will carry (GET /system/status cdrCorrelatorIndex). */
  get nextCorrelatorIndex(): number {
    return this.#nextCorrelatorIndex;
  }

  get receivers(): readonly CdrReceiver[] {
    return this.#receivers;
  }

  get alarm(): CdrAlarm | null {
    return this.#alarm;
  }

  get idle(): boolean {
    return this.#receivers.every((r) => r.sender.idle);
  }

  get pending(): number {
    return this.#receivers.reduce((n, r) => n + r.sender.pending, 0);
  }

  /** Generated records (about the most recent `recordLogLimit`), whatever happened to their delivery. */
  get log(): readonly SimRecord[] {
    return this.#log;
  }

  handle(change: Change): void {
    if ('bridge' in change && change.bridge !== this.bridge.name) return;
    if (change.kind === 'bridgeRestarted') {
      this.#nextCorrelatorIndex = 0;
      return;
    }
    const content = recordFor(change);
    if (!content) return;
    const record: SimRecord = {
      ...content,
      time: this.#clock.timestamp(),
      session: this.bridge.session,
      callBridge: this.#clustered ? this.bridge.callBridgeId : null,
      correlatorIndex: this.#nextCorrelatorIndex++,
    };
    this.#log.push(record);
    // Trim in chunks so a long run does not shift the whole array per record.
    if (this.#log.length > this.#logLimit + Math.max(100, this.#logLimit / 10)) this.#log.splice(0, this.#log.length - this.#logLimit);
    for (const receiver of this.#receivers) receiver.sender.enqueue(record);
  }

  addReceiver(uri: string): CdrReceiver {
    if (this.#receivers.length >= MAX_CDR_RECEIVERS) throw new TooManyReceiversError();
    const receiver = { id: this.#newId(), uri, sender: new ReceiverSender(uri, this.#options, () => this.#updateAlarm()) };
    receiver.sender.setOutage(this.#outage);
    this.#receivers.push(receiver);
    return receiver;
  }

  removeReceiver(id: string): boolean {
    const receiver = this.#receivers.find((r) => r.id === id);
    if (!receiver) return false;
    this.#receivers = this.#receivers.filter((r) => r !== receiver);
    void receiver.sender.stop();
    this.#updateAlarm();
    return true;
  }

  /** Replaces the receiver list; receivers whose URI stays keep their queue and indexes. */
  setReceivers(uris: readonly string[]): void {
    if (uris.length > MAX_CDR_RECEIVERS) throw new TooManyReceiversError();
    for (const receiver of [...this.#receivers]) if (!uris.includes(receiver.uri)) this.removeReceiver(receiver.id);
    for (const uri of uris) if (!this.#receivers.some((r) => r.uri === uri)) this.addReceiver(uri);
  }

  setOutage(on: boolean, receiverUri?: string): void {
    if (receiverUri === undefined) this.#outage = on;
    for (const r of this.#receivers) if (receiverUri === undefined || r.uri === receiverUri) r.sender.setOutage(on);
  }

  stats(): (ReceiverStats & { bridge: string; session: string })[] {
    return this.#receivers.map((r) => ({ bridge: this.bridge.name, session: this.bridge.session, ...r.sender.stats() }));
  }

  async stop(): Promise<void> {
    await Promise.all(this.#receivers.map((r) => r.sender.stop()));
  }

  #updateAlarm(): void {
    const failing = this.#receivers.some((r) => r.sender.failing);
    if (failing && !this.#alarm) this.#alarm = { id: this.#newId(), type: 'cdrConnectionFailure', since: Date.now() };
    if (!failing) this.#alarm = null;
  }
}
