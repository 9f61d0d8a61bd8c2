/**
 * Test scaffolding for the simulator's fidelity tests: a CDR receiver that answers 200/500/hang on demand,
 * a tiny CMS API client, an events WebSocket client, and XML parsing in the xmltodict-like shape.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BridgeInfo, CdrOptions } from '@cms/cms-sim';
import { XMLParser } from 'fast-xml-parser';
import WebSocket from 'ws';
import { eventually } from '../helpers/infra.ts';

export { eventually };

/** Short CDR timings so re-send and back-off tests finish quickly. */
export const FAST_CDR: CdrOptions = { flushDelayMs: 5, resendInitialMs: 20, resendMaxMs: 200, requestTimeoutMs: 2000 };

// biome-ignore lint/suspicious/noExplicitAny: parsed XML is dynamic by nature
type Xml = any;

const COLLECTIONS = new Set([
  'records.record',
  'calls.call',
  'callLegs.callLeg',
  'participants.participant',
  'callBridges.callBridge',
  'alarms.alarm',
  'cdrReceivers.cdrReceiver',
]);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (_name, jpath) => COLLECTIONS.has(String(jpath)) || String(jpath).endsWith('.callLeg.alarm'),
});

function parseXml(text: string): Xml {
  return parser.parse(text);
}

export interface ParsedRecord {
  type: string;
  time: string;
  recordIndex: number;
  correlatorIndex: number;
  numPreceedingRecordsMissing: number | null;
  /** call | callLeg | recording | streaming */
  kind: string;
  id: string;
  body: Xml;
  raw: Xml;
}

export interface ParsedBatch {
  session: string;
  callBridge: string | null;
  records: ParsedRecord[];
}

const KINDS = ['call', 'callLeg', 'recording', 'streaming'];

function parseBatch(xml: string): ParsedBatch {
  const doc = parseXml(xml).records;
  return {
    session: doc['@session'],
    callBridge: doc['@callBridge'] ?? null,
    records: (doc.record ?? []).map((r: Xml) => {
      const kind = KINDS.find((k) => r[k] !== undefined) as string;
      return {
        type: r['@type'],
        time: r['@time'],
        recordIndex: Number(r['@recordIndex']),
        correlatorIndex: Number(r['@correlatorIndex']),
        numPreceedingRecordsMissing: r['@numPreceedingRecordsMissing'] === undefined ? null : Number(r['@numPreceedingRecordsMissing']),
        kind,
        id: r[kind]['@id'],
        body: r[kind],
        raw: r,
      };
    }),
  };
}

export interface ReceivedPost {
  url: string;
  body: string;
  status: number;
  batch: ParsedBatch;
  /** Which TCP connection carried it (for keep-alive checks). */
  connection: number;
}

/** A CDR receiver for tests: answers 200 by default; `failNext(n)`, `mode = 'fail' | 'hang'` change that. */
export class TestReceiver {
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  readonly posts: ReceivedPost[] = [];
  connections = 0;
  readonly #server: Server;
  #failBudget = 0;
  #port = 0;
  readonly #hanging = new Set<ServerResponse>();

  private constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.connections++;
      (socket as unknown as { testId: number }).testId = this.connections;
    });
  }

  static async start(): Promise<TestReceiver> {
    const r = new TestReceiver();
    await new Promise<void>((resolve) => r.#server.listen(0, '127.0.0.1', resolve));
    r.#port = (r.#server.address() as AddressInfo).port;
    return r;
  }

  url(path = '/cdr'): string {
    return `http://127.0.0.1:${this.#port}${path}`;
  }

  failNext(n: number): void {
    this.#failBudget = n;
  }

  /** Batches answered 200, in arrival order. */
  accepted(): ParsedBatch[] {
    return this.posts.filter((p) => p.status === 200).map((p) => p.batch);
  }

  acceptedRecords(): ParsedRecord[] {
    return this.accepted().flatMap((b) => b.records);
  }

  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      let status = 200;
      if (this.mode === 'hang') {
        this.#hanging.add(res);
        this.posts.push({ url: req.url ?? '', body, status: 0, batch: parseBatch(body), connection: connectionId(req) });
        return;
      }
      if (this.mode === 'fail' || this.#failBudget > 0) {
        status = 500;
        if (this.#failBudget > 0) this.#failBudget--;
      }
      this.posts.push({ url: req.url ?? '', body, status, batch: parseBatch(body), connection: connectionId(req) });
      res.writeHead(status);
      res.end();
    });
  }
}

function connectionId(req: IncomingMessage): number {
  return (req.socket as unknown as { testId: number }).testId;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  xml: Xml;
}

/** Minimal CMS API client: Basic auth, form bodies, parsed XML answers. */
export class Api {
  readonly #base: string;
  readonly #auth: string;

  constructor(bridge: Pick<BridgeInfo, 'url' | 'username' | 'password'>, credentials?: { username: string; password: string }) {
    this.#base = bridge.url;
    const c = credentials ?? bridge;
    this.#auth = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
  }

  get(path: string): Promise<ApiResponse> {
    return this.#request('GET', path);
  }

  put(path: string, params: Record<string, string> = {}): Promise<ApiResponse> {
    return this.#request('PUT', path, params);
  }

  post(path: string, params: Record<string, string> = {}): Promise<ApiResponse> {
    return this.#request('POST', path, params);
  }

  delete(path: string): Promise<ApiResponse> {
    return this.#request('DELETE', path);
  }

  async #request(method: string, path: string, params?: Record<string, string>): Promise<ApiResponse> {
    const headers: Record<string, string> = { authorization: this.#auth };
    let body: string | undefined;
    if (params) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(params).toString();
    }
    const res = await fetch(`${this.#base}/api/v1${path}`, { method, headers, body });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, xml: text ? parseXml(text) : null };
  }
}

export interface EventMessage {
  type: string;
  // biome-ignore lint/suspicious/noExplicitAny: protocol payloads are dynamic
  message?: any;
  // biome-ignore lint/suspicious/noExplicitAny: protocol payloads are dynamic
  messageAck?: any;
}

/** Events client for tests. With autoAck it acknowledges every CMS message, as a well-behaved client must. */
export class EventsClient {
  autoAck = true;
  readonly received: EventMessage[] = [];
  readonly socket: WebSocket;
  #nextId = 1;
  closeCode: number | null = null;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as EventMessage;
      this.received.push(msg);
      if (this.autoAck && msg.type === 'message') this.ack(msg.message.messageId);
    });
    socket.on('close', (code) => {
      this.closeCode = code;
    });
  }

  static async token(bridge: BridgeInfo): Promise<string> {
    const res = await fetch(`${bridge.url}/api/v1/authTokens`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${bridge.username}:${bridge.password}`).toString('base64')}` },
    });
    const token = res.headers.get('x-cisco-cms-auth-token');
    if (res.status !== 200 || !token) throw new Error(`authTokens answered ${res.status}`);
    return token;
  }

  static async connect(bridge: BridgeInfo, token?: string): Promise<EventsClient> {
    const t = token ?? (await EventsClient.token(bridge));
    const socket = new WebSocket(`${bridge.url.replace(/^http/, 'ws')}/events/v1?authToken=${encodeURIComponent(t)}`);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
    });
    return new EventsClient(socket);
  }

  /** Sends a subscribeRequest; returns its messageId. */
  subscribe(subscriptions: object[]): number {
    const messageId = this.#nextId++;
    this.socket.send(JSON.stringify({ type: 'message', message: { messageId, type: 'subscribeRequest', subscriptions } }));
    return messageId;
  }

  ack(messageId: number): void {
    this.socket.send(JSON.stringify({ type: 'messageAck', messageAck: { messageId, status: 'success' } }));
  }

  /** CMS messages (not acks) of one type. */
  messages(type?: string): EventMessage['message'][] {
    return this.received.filter((m) => m.type === 'message' && (!type || m.message.type === type)).map((m) => m.message);
  }

  ackFor(messageId: number): EventMessage['messageAck'] | undefined {
    return this.received.find((m) => m.type === 'messageAck' && m.messageAck.messageId === messageId)?.messageAck;
  }

  close(): void {
    this.socket.close();
  }
}
