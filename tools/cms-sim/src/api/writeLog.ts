/** What happened to one API write. */
export type WriteOutcome = 'applied' | 'failed' | 'rateLimited' | 'fault503' | 'restarting' | 'unauthorized' | 'forbidden';

export interface WriteLogEntry {
  seq: number;
  /** ISO time the request arrived (real time). */
  at: string;
  atMs: number;
  bridge: string;
  method: string;
  /** Path with query string, as sent. */
  url: string;
  /** Form/query parameters. */
  params: Record<string, string>;
  status: number;
  outcome: WriteOutcome;
  /** The CMS failure reason for 4xx/5xx answers. */
  failureReason?: string;
}

export interface WriteLogFilter {
  bridge?: string;
  /** Entries with seq greater than this. */
  sinceSeq?: number;
  method?: string;
  /** Substring of the URL, case-insensitive. */
  urlContains?: string;
}

/** Every API write (POST/PUT/DELETE) any bridge received, in arrival order, bounded. */
export class WriteLog {
  readonly #entries: WriteLogEntry[] = [];
  readonly #limit: number;
  #seq = 0;

  constructor(limit = 100_000) {
    this.#limit = limit;
  }

  add(entry: Omit<WriteLogEntry, 'seq'>): WriteLogEntry {
    const full = { seq: ++this.#seq, ...entry };
    this.#entries.push(full);
    // Trim in chunks so a long run does not shift the whole array per write.
    if (this.#entries.length > this.#limit + Math.max(100, this.#limit / 10)) this.#entries.splice(0, this.#entries.length - this.#limit);
    return full;
  }

  list(filter: WriteLogFilter = {}): WriteLogEntry[] {
    const needle = filter.urlContains?.toLowerCase();
    return this.#entries.filter(
      (e) =>
        (filter.bridge === undefined || e.bridge === filter.bridge) &&
        (filter.sinceSeq === undefined || e.seq > filter.sinceSeq) &&
        (filter.method === undefined || e.method === filter.method.toUpperCase()) &&
        (needle === undefined || e.url.toLowerCase().includes(needle)),
    );
  }
}
