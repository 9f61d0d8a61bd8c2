import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import type { ResolvedCdrOptions } from '../options.ts';
import { Deque } from '../util/deque.ts';
import { type OutgoingRecord, renderRecords } from './envelope.ts';
import type { SimRecord } from './records.ts';

interface Entry {
  record: SimRecord;
  /** Given when the record first goes into a POST; kept for every re-send of that POST. */
  recordIndex: number | null;
  /** Records discarded just before this one. */
  missingBefore: number;
}

interface Batch {
  entries: Entry[];
  xml: string;
  attempts: number;
  controller: AbortController | null;
}

export interface ReceiverStats {
  receiver: string;
  /** Records handed to this receiver's queue. */
  generated: number;
  acknowledged: number;
  discarded: number;
  /** POSTs repeated after a failure. */
  resends: number;
  posts: number;
  failedPosts: number;
  /** Records generated but neither acknowledged nor discarded. */
  pending: number;
  failing: boolean;
  outage: boolean;
  lastStatus: number | null;
  lastError: string | null;
  lastGeneratedCorrelatorIndex: number | null;
  lastAcknowledgedCorrelatorIndex: number | null;
  /** recordIndex the next new POST starts with. */
  nextRecordIndex: number;
}

/**
 * One Call Bridge → one receiver. Records wait in an ordered buffer; the oldest unacknowledged POST is sent
 * (and re-sent with exponential back-off) until it is answered 200, and only then the next one, so order is
 * preserved. Beyond `bufferLimit` the oldest records are discarded and the next record sent carries
 * numPreceedingRecordsMissing. recordIndex is given when a record first goes into a POST and kept for every
 * re-send, so records discarded before they were ever sent leave no gap in it, and no index names two records.
 */
export class ReceiverSender {
  readonly uri: string;
  readonly #options: ResolvedCdrOptions;
  readonly #pool: Pool;
  readonly #path: string;
  readonly #onFailingChange: () => void;
  readonly #queue = new Deque<Entry>();
  #batch: Batch | null = null;
  #timer: NodeJS.Timeout | null = null;
  #retryAt = 0;
  #failures = 0;
  #indexSession: string | null = null;
  #nextRecordIndex = 1;
  #stopped = false;
  #outage = false;
  #failing = false;
  #stats = {
    generated: 0,
    acknowledged: 0,
    discarded: 0,
    resends: 0,
    posts: 0,
    failedPosts: 0,
    lastStatus: null as number | null,
    lastError: null as string | null,
    lastGeneratedCorrelatorIndex: null as number | null,
    lastAcknowledgedCorrelatorIndex: null as number | null,
  };

  constructor(uri: string, options: ResolvedCdrOptions, onFailingChange: () => void) {
    const url = new URL(uri);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError(`CDR receiver must be http(s): ${uri}`);
    this.uri = uri;
    this.#options = options;
    this.#onFailingChange = onFailingChange;
    // Query parameters are part of the path on purpose: CMS sends them verbatim (receivers authenticate with ?token=).
    this.#path = url.pathname + url.search;
    this.#pool = new Pool(url.origin, {
      connections: 1,
      keepAliveTimeout: 30_000,
      connect: options.caFile ? { ca: readFileSync(options.caFile) } : {},
    });
  }

  get failing(): boolean {
    return this.#failing;
  }

  get idle(): boolean {
    return this.#queue.length === 0 && this.#batch === null;
  }

  get pending(): number {
    return this.#queue.length;
  }

  enqueue(record: SimRecord): void {
    if (this.#stopped) return;
    this.#queue.push({ record, recordIndex: null, missingBefore: 0 });
    this.#stats.generated++;
    this.#stats.lastGeneratedCorrelatorIndex = record.correlatorIndex;
    this.#enforceLimit();
    this.#pump();
  }

  /** Simulates the receiver being unreachable (every POST fails without touching the network). */
  setOutage(on: boolean): void {
    this.#outage = on;
    if (on || !this.#timer) return;
    // Recover promptly instead of waiting out a long back-off.
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#retryAt = 0;
    if (this.#batch) void this.#attempt(this.#batch);
    else this.#pump();
  }

  stats(): ReceiverStats {
    return {
      receiver: this.uri,
      ...this.#stats,
      pending: this.#queue.length,
      failing: this.#failing,
      outage: this.#outage,
      nextRecordIndex: this.#nextRecordIndex,
    };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#batch?.controller?.abort();
    this.#batch = null;
    await this.#pool.destroy().catch(() => undefined);
  }

  #enforceLimit(): void {
    while (this.#queue.length > this.#options.bufferLimit) {
      const dropped = this.#queue.shift() as Entry;
      if (this.#batch && this.#batch.entries[0] === dropped) this.#dissolveBatch();
      this.#stats.discarded++;
      const next = this.#queue.at(0);
      if (next) next.missingBefore += dropped.missingBefore + 1;
    }
  }

  /**
   * The POST in progress lost its oldest records to the buffer limit: rebuild it from what is left. The records
   * left keep the recordIndex they were sent with (a receiver may have seen them), and the discarded ones' indexes
   * are never given to another record: the gap is what numPreceedingRecordsMissing accounts for.
   */
  #dissolveBatch(): void {
    const batch = this.#batch;
    if (!batch) return;
    batch.controller?.abort();
    this.#batch = null;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #pump(): void {
    if (this.#stopped || this.#batch || this.#timer || this.#queue.length === 0) return;
    // A full POST's worth goes at once; otherwise wait briefly for records close behind.
    const gather = this.#queue.length >= this.#options.maxRecordsPerPost ? 0 : this.#options.flushDelayMs;
    const wait = Math.max(gather, this.#retryAt - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#startBatch();
    }, wait);
  }

  #startBatch(): void {
    if (this.#stopped || this.#batch || this.#queue.length === 0) return;
    const entries: Entry[] = [];
    const session = this.#queue.at(0)?.record.session;
    for (let i = 0; i < this.#queue.length && entries.length < this.#options.maxRecordsPerPost; i++) {
      const entry = this.#queue.at(i) as Entry;
      if (entry.record.session !== session) break; // one envelope = one session
      if (entry.recordIndex === null) {
        if (entry.record.session !== this.#indexSession) {
          this.#indexSession = entry.record.session;
          this.#nextRecordIndex = 1;
        }
        entry.recordIndex = this.#nextRecordIndex++;
      }
      entries.push(entry);
    }
    const outgoing: OutgoingRecord[] = entries.map((e) => ({
      record: e.record,
      recordIndex: e.recordIndex as number,
      numPreceedingRecordsMissing: e.missingBefore,
    }));
    const batch: Batch = { entries, xml: renderRecords(outgoing), attempts: 0, controller: null };
    this.#batch = batch;
    void this.#attempt(batch);
  }

  async #attempt(batch: Batch): Promise<void> {
    batch.attempts++;
    if (batch.attempts > 1) this.#stats.resends++;
    this.#stats.posts++;
    const ok = await this.#post(batch);
    if (this.#stopped || this.#batch !== batch) return;
    batch.controller = null;
    if (ok) {
      for (let i = 0; i < batch.entries.length; i++) this.#queue.shift();
      this.#stats.acknowledged += batch.entries.length;
      this.#stats.lastAcknowledgedCorrelatorIndex = batch.entries.at(-1)?.record.correlatorIndex ?? null;
      this.#batch = null;
      this.#failures = 0;
      this.#retryAt = 0;
      this.#setFailing(false);
      this.#pump();
      return;
    }
    this.#stats.failedPosts++;
    this.#failures++;
    this.#setFailing(true);
    const delay = Math.min(this.#options.resendMaxMs, this.#options.resendInitialMs * 2 ** Math.min(this.#failures - 1, 30));
    this.#retryAt = Date.now() + delay;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#batch === batch) void this.#attempt(batch);
      else this.#pump();
    }, delay);
  }

  async #post(batch: Batch): Promise<boolean> {
    if (this.#outage) {
      await new Promise((resolve) => setImmediate(resolve));
      this.#stats.lastStatus = null;
      this.#stats.lastError = 'simulated receiver outage';
      return false;
    }
    const controller = new AbortController();
    batch.controller = controller;
    try {
      const response = await this.#pool.request({
        path: this.#path,
        method: 'POST',
        headers: { 'content-type': 'application/xml' },
        body: batch.xml,
        signal: controller.signal,
        headersTimeout: this.#options.requestTimeoutMs,
        bodyTimeout: this.#options.requestTimeoutMs,
      });
      await response.body.dump();
      this.#stats.lastStatus = response.statusCode;
      this.#stats.lastError = response.statusCode === 200 ? null : `HTTP ${response.statusCode}`;
      return response.statusCode === 200;
    } catch (err) {
      this.#stats.lastStatus = null;
      this.#stats.lastError = (err as Error).message;
      return false;
    }
  }

  #setFailing(failing: boolean): void {
    if (this.#failing === failing) return;
    this.#failing = failing;
    this.#onFailingChange();
  }
}
