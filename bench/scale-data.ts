/**
 * The scale benchmark's database: a year of a 20-bridge cluster, loaded directly with COPY (psql) in one pass.
 *
 * Records are generated as CMS would send them (callStart, callLegStart, callLegUpdate, callLegEnd, callEnd, and a
 * few recording/streaming records), in time order across calls, with each Call Bridge's sessions and correlator
 * indexes; each row is what the policy worker's insert stores: the record's xmltodict `raw` and its envelope columns
 * derived by @cms/cdr's own toCdrRecord. `checkFidelity` proves that for a sample by parsing the same records from
 * CMS-shaped XML with parseCdrBatch. The projections the worker keeps (calls, call_legs, meetings, level changes,
 * desired messages, CMS write outcomes) are loaded beside them, consistent with the records.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { type CdrRecord, parseCdrBatch, type XmlObject } from '@cms/cdr';
import { mulberry32 } from '@cms/cms-sim';
import type { pg } from '@cms/db';
import { toCdrRecord } from '../libs/cdr/src/record.ts';

const DAY_MS = 86_400_000;
const NODES = 20;

function guid(rand: () => number): string {
  const hex = (n: number) =>
    Math.floor(rand() * 16 ** n)
      .toString(16)
      .padStart(n, '0');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${(8 + Math.floor(rand() * 4)).toString(16)}${hex(3)}-${hex(6)}${hex(6)}`;
}

const cmsTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** One record before the bridge numbers it: its type, time, element and the element's text fields, in order. */
interface PendingRecord {
  at: number;
  seq: number;
  node: number;
  type: string;
  kind: 'call' | 'callLeg' | 'recording' | 'streaming';
  id: string;
  fields: [string, string][];
}

/** A numbered record: CMS's envelope plus the row the worker stores. */
export interface GeneratedRecord {
  session: string;
  callBridge: string;
  node: string;
  record: CdrRecord;
}

function rawOf(p: PendingRecord, correlatorIndex: number): XmlObject {
  const element: XmlObject = { '@id': p.id };
  for (const [name, value] of p.fields) element[name] = value;
  return {
    '@type': p.type,
    '@time': cmsTime(p.at),
    '@recordIndex': String(correlatorIndex + 1),
    '@correlatorIndex': String(correlatorIndex),
    [p.kind]: element,
  };
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function recordXml(p: PendingRecord, correlatorIndex: number): string {
  const fields = p.fields.map(([n, v]) => `<${n}>${xmlEscape(v)}</${n}>`).join('');
  return `<record type="${p.type}" time="${cmsTime(p.at)}" recordIndex="${correlatorIndex + 1}" correlatorIndex="${correlatorIndex}"><${p.kind} id="${p.id}">${fields}</${p.kind}></record>`;
}

/** A binary min-heap of pending records by (time, sequence): CMS emits a bridge's records in time order. */
class Heap {
  private items: PendingRecord[] = [];
  get size() {
    return this.items.length;
  }
  peek(): PendingRecord | undefined {
    return this.items[0];
  }
  private less(a: PendingRecord, b: PendingRecord) {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
  push(item: PendingRecord) {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(items[i] as PendingRecord, items[parent] as PendingRecord)) break;
      [items[i], items[parent]] = [items[parent] as PendingRecord, items[i] as PendingRecord];
      i = parent;
    }
  }
  pop(): PendingRecord | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(items[l] as PendingRecord, items[m] as PendingRecord)) m = l;
        if (r < items.length && this.less(items[r] as PendingRecord, items[m] as PendingRecord)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m] as PendingRecord, items[i] as PendingRecord];
        i = m;
      }
    }
    return top;
  }
}

/** Each returns a promise when its COPY stream is full: generation waits for it (back-pressure). */
type Sink = (row: unknown[]) => Promise<void> | undefined;
export interface Projections {
  calls: Sink;
  legs: Sink;
  meetings: Sink;
  levelChanges: Sink;
  messages: Sink;
  writes: Sink;
}

export interface GenerateOptions {
  records: number;
  seed: number;
  /** The newest record's time; the oldest is a year before. */
  end: number;
}

/** What the generator chose, for the benchmark's filters: values that exist, rare ones and common ones. */
export interface Landmarks {
  nodes: string[];
  sessions: { session: string; node: string; first: number; last: number }[];
  coSpaces: string[];
  sampleCalls: string[];
  sampleLegs: string[];
  sampleCorrelators: string[];
  rareType: string;
}

/**
 * Generates `records` CDRs over the year before `end` and calls `emit` for each in arrival order (the order ids are
 * given in), and `projections` for the rows the worker's projections would hold at `end`.
 */
export async function generate(
  options: GenerateOptions,
  emit: (record: GeneratedRecord, xml: () => string) => Promise<void> | undefined,
  sinks: Projections,
): Promise<Landmarks> {
  const waits: Promise<void>[] = [];
  const track = (p: Promise<void> | undefined) => {
    if (p) waits.push(p);
  };
  const projections = {
    calls: (row: unknown[]) => track(sinks.calls(row)),
    legs: (row: unknown[]) => track(sinks.legs(row)),
    meetings: (row: unknown[]) => track(sinks.meetings(row)),
    levelChanges: (row: unknown[]) => track(sinks.levelChanges(row)),
    messages: (row: unknown[]) => track(sinks.messages(row)),
    writes: (row: unknown[]) => track(sinks.writes(row)),
  };
  // The simulator's seeded generator: a given size and seed always produce the same database.
  const rand = mulberry32(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const start = options.end - 365 * DAY_MS;
  const nodes = Array.from({ length: NODES }, (_, i) => ({
    name: `cms${String(i + 1).padStart(2, '0')}`,
    callBridge: guid(rand),
    session: guid(rand),
    correlator: 0,
    // A Call Bridge restarts (a new session) every 30 to 90 days.
    nextRestart: start + (30 + rand() * 60) * DAY_MS,
  }));
  const sessions: Landmarks['sessions'] = nodes.map((n) => ({ session: n.session, node: n.name, first: start, last: start }));
  const coSpaces = Array.from({ length: 5000 }, () => guid(rand));
  const domains = ['corp.example.com', 'partner.example.net', 'gmail.example.org', 'lab.corp.example.com'];
  const heap = new Heap();
  let seq = 0;
  let emitted = 0;
  const landmarks: Landmarks = {
    nodes: nodes.map((n) => n.name),
    sessions,
    coSpaces,
    sampleCalls: [],
    sampleLegs: [],
    sampleCorrelators: [],
    rareType: 'streamingStart',
  };

  const flushUntil = (at: number) => {
    for (let next = heap.peek(); next && next.at <= at && emitted < options.records; next = heap.peek()) {
      heap.pop();
      const node = nodes[next.node] as (typeof nodes)[number];
      while (next.at >= node.nextRestart) {
        node.session = guid(rand);
        node.correlator = 0;
        sessions.push({ session: node.session, node: node.name, first: node.nextRestart, last: node.nextRestart });
        node.nextRestart += (30 + rand() * 60) * DAY_MS;
      }
      const correlatorIndex = node.correlator++;
      const raw = rawOf(next, correlatorIndex);
      const result = toCdrRecord(raw);
      if (!result.record) throw new Error(`generated an invalid record: ${result.reason}`);
      const session = node.session;
      const p = next;
      for (let i = sessions.length - 1; i >= 0; i--) {
        const s = sessions[i] as Landmarks['sessions'][number];
        if (s.session === session) {
          s.last = p.at;
          break;
        }
      }
      track(emit({ session, callBridge: node.callBridge, node: node.name, record: result.record }, () => recordXml(p, correlatorIndex)));
      emitted++;
    }
  };

  // Meetings arrive as a Poisson process whose rate adapts so that the records reach the target at `end`.
  let at = start;
  let pushed = 0;
  let meetingCount = 0;
  while (pushed < options.records) {
    if (waits.length) {
      await Promise.all(waits);
      waits.length = 0;
    }
    const perMeeting = meetingCount ? pushed / meetingCount : 14;
    const meanGap = ((options.end - at) * perMeeting) / Math.max(1, options.records - pushed);
    at += -Math.log(1 - rand()) * meanGap;
    // The rate undershot: the last few meetings start in the final minute.
    if (at >= options.end) at = options.end - rand() * 60_000;
    flushUntil(at);
    meetingCount++;
    const correlator = guid(rand);
    const coSpace = rand() < 0.05 ? (coSpaces[0] as string) : pick(coSpaces);
    const name = `Space ${coSpace.slice(0, 6)}`;
    const durationMs = (5 + rand() * 85) * 60_000;
    // One bridge for most meetings; 15 % are distributed over two.
    const bridges = rand() < 0.15 ? [Math.floor(rand() * NODES), Math.floor(rand() * NODES)] : [Math.floor(rand() * NODES)];
    if (bridges.length === 2 && bridges[0] === bridges[1]) bridges.pop();
    const level = 1 + Math.floor(rand() * 3);
    let decisiveLeg: string | null = null;
    const meetingCalls: string[] = [];
    for (const nodeIndex of bridges) {
      const node = nodes[nodeIndex] as (typeof nodes)[number];
      const callId = guid(rand);
      meetingCalls.push(callId);
      const callStart = at + Math.floor(rand() * 5000);
      const callEnd = callStart + durationMs;
      const ended = callEnd <= options.end;
      const push = (p: Omit<PendingRecord, 'seq' | 'node'>) => {
        if (p.at > options.end) return;
        heap.push({ ...p, seq: seq++, node: nodeIndex });
        pushed++;
      };
      push({
        at: callStart,
        type: 'callStart',
        kind: 'call',
        id: callId,
        fields: [
          ['name', name],
          ['callType', 'coSpace'],
          ['coSpace', coSpace],
          ['callCorrelator', correlator],
        ],
      });
      const legCount = 1 + Math.floor(rand() * rand() * 8);
      for (let l = 0; l < legCount; l++) {
        const legId = guid(rand);
        decisiveLeg ??= legId;
        const join = callStart + Math.floor(rand() * Math.min(durationMs / 2, 600_000));
        const leave = join + Math.floor(rand() * (callEnd - join));
        const who = `user${Math.floor(rand() * 100_000)}@${pick(domains)}`;
        push({
          at: join,
          type: 'callLegStart',
          kind: 'callLeg',
          id: legId,
          fields: [
            ['displayName', who.split('@')[0] as string],
            ['remoteParty', who],
            ['localAddress', `${coSpace.slice(0, 8)}@meet.example.com`],
            ['type', 'sip'],
            ['direction', 'incoming'],
            ['groupId', legId],
          ],
        });
        push({
          at: join + 2000,
          type: 'callLegUpdate',
          kind: 'callLeg',
          id: legId,
          fields: [
            ['state', 'connected'],
            ['call', callId],
            ['groupId', legId],
          ],
        });
        push({
          at: join + 2500,
          type: 'callLegUpdate',
          kind: 'callLeg',
          id: legId,
          fields: [
            ['state', 'connected'],
            ['call', callId],
            ['deactivated', 'false'],
          ],
        });
        const legEnded = leave <= options.end && ended;
        push({
          at: leave,
          type: 'callLegEnd',
          kind: 'callLeg',
          id: legId,
          fields: [
            ['reason', 'remoteTeardown'],
            ['remoteTeardown', 'true'],
            ['durationSeconds', String(Math.round((leave - join) / 1000))],
            ['activatedDuration', String(Math.round((leave - join) / 1000))],
            ['encryptedMedia', 'true'],
          ],
        });
        projections.legs([
          legId,
          callId,
          node.name,
          node.callBridge,
          node.session,
          who.split('@')[0],
          who,
          'sip',
          'incoming',
          'connected',
          new Date(join).toISOString(),
          new Date(join + 2000).toISOString(),
          legEnded ? new Date(leave).toISOString() : null,
          legEnded ? 'remoteTeardown' : null,
          legEnded ? Math.round((leave - join) / 1000) : null,
        ]);
        if (landmarks.sampleLegs.length < 200 && rand() < 0.001) landmarks.sampleLegs.push(legId);
      }
      const extra = rand();
      if (extra < 0.02 || extra > 0.997) {
        const kind = extra < 0.02 ? 'recording' : 'streaming';
        const id = guid(rand);
        push({ at: callStart + 60_000, type: `${kind}Start`, kind, id, fields: [['call', callId]] });
        push({ at: callEnd - 1000, type: `${kind}End`, kind, id, fields: [['call', callId]] });
      }
      push({
        at: callEnd,
        type: 'callEnd',
        kind: 'call',
        id: callId,
        fields: [
          ['callLegsCompleted', String(legCount)],
          ['callLegsMaxActive', String(legCount)],
          ['durationSeconds', String(Math.round(durationMs / 1000))],
        ],
      });
      projections.calls([
        callId,
        node.name,
        node.callBridge,
        node.session,
        name,
        'coSpace',
        coSpace,
        correlator,
        new Date(callStart).toISOString(),
        ended ? new Date(callEnd).toISOString() : null,
        ended ? legCount : null,
        ended ? legCount : null,
        ended ? Math.round(durationMs / 1000) : null,
        new Date(ended ? callEnd : callStart).toISOString(),
      ]);
      const decidedAt = new Date(callStart + 3000).toISOString();
      projections.messages([
        callId,
        node.name,
        correlator,
        level,
        `Security Level ${level}`,
        'bottom',
        'permanent',
        1,
        decidedAt,
        1,
        decidedAt,
        'applied',
      ]);
      projections.writes([decidedAt, node.name, 'callMessage', callId, callId, `Security Level ${level}`, 1, 'applied', 200, 1, 12]);
    }
    const decidedAt = new Date(at + 3000).toISOString();
    projections.meetings([correlator, level, decisiveLeg, decidedAt]);
    projections.levelChanges([correlator, decidedAt, null, level, decisiveLeg, JSON.stringify({ rule: 'bench', level })]);
    if (landmarks.sampleCalls.length < 200 && rand() < 0.002) {
      landmarks.sampleCalls.push(meetingCalls[0] as string);
      landmarks.sampleCorrelators.push(correlator);
    }
  }
  flushUntil(options.end);
  await Promise.all(waits);
  return landmarks;
}

/** Parses a sample of generated records from CMS-shaped XML and checks the worker would store exactly these rows. */
export function checkFidelity(sample: { session: string; callBridge: string; record: CdrRecord; xml: string }[]): void {
  const bySession = new Map<string, typeof sample>();
  for (const s of sample) bySession.set(s.session, [...(bySession.get(s.session) ?? []), s]);
  for (const [session, items] of bySession) {
    const xml = `<?xml version="1.0"?>\n<records session="${session}" callBridge="${items[0]?.callBridge}">${items.map((i) => i.xml).join('')}</records>`;
    const parsed = parseCdrBatch(xml);
    assert.equal(parsed.rejected.length, 0);
    assert.deepEqual(
      parsed.records,
      items.map((i) => i.record),
    );
  }
}

/** COPY text format: \N for null, backslash escapes for backslash, tab, newline and carriage return. */
function copyValue(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  const text = typeof value === 'string' ? value : String(value);
  return /[\\\t\n\r]/.test(text) ? text.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r') : text;
}

/** A COPY … FROM STDIN through psql, with back-pressure. */
export class CopyStream {
  private child;
  private buffer: string[] = [];
  private size = 0;
  private done: Promise<unknown>;
  rows = 0;
  constructor(url: string, table: string, columns: string[]) {
    this.child = spawn('psql', [url, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `COPY ${table} (${columns.join(', ')}) FROM STDIN`], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    this.done = once(this.child, 'exit').then(([code]) => {
      if (code !== 0) throw new Error(`COPY into ${table} failed (psql exit ${code})`);
    });
  }
  /** Resolves at once unless psql's stdin is full. */
  write(row: unknown[]): Promise<void> | undefined {
    const line = `${row.map(copyValue).join('\t')}\n`;
    this.buffer.push(line);
    this.size += line.length;
    this.rows++;
    if (this.size < 1 << 20) return undefined;
    return this.flush();
  }
  private draining: Promise<void> | undefined;
  private flush(): Promise<void> | undefined {
    const chunk = this.buffer.join('');
    this.buffer = [];
    this.size = 0;
    if (this.child.stdin.write(chunk) || this.draining) return this.draining;
    this.draining = once(this.child.stdin, 'drain').then(() => {
      this.draining = undefined;
    });
    return this.draining;
  }
  async end(): Promise<void> {
    await this.flush();
    this.child.stdin.end();
    await this.done;
  }
}

/** The database's own record of how it was generated (COMMENT ON DATABASE), so it is generated once. */
export interface Generated {
  records: number;
  seed: number;
  end: string;
  seconds: { generate: number; indexes: number; total: number };
  commit: string;
  landmarks: Landmarks;
}

export async function readGenerated(client: pg.Client, database: string): Promise<Generated | null> {
  const { rows } = await client.query('SELECT shobj_description(oid, $2) AS c FROM pg_database WHERE datname = $1', [
    database,
    'pg_database',
  ]);
  const comment = rows[0]?.c as string | undefined;
  if (!comment) return null;
  try {
    return JSON.parse(comment) as Generated;
  } catch {
    return null;
  }
}
