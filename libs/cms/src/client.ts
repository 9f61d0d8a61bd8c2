import { readFileSync } from 'node:fs';
import type { CmsNodeConfig } from '@cms/config';
import { Pool } from 'undici';
import { CmsApiError, type CmsTransportFailure } from './errors.ts';
import type {
  AddParticipantOptions,
  CallLegUpdate,
  CallUpdate,
  CmsCall,
  CmsCallLeg,
  CmsCallLegSummary,
  CmsCallSummary,
  CmsListQuery,
  CmsPage,
  FormFields,
  ParticipantsBulkUpdate,
  ParticipantUpdate,
} from './types.ts';
import { type CmsObject, children, failureDetails, parseCmsXml, rootObject } from './xml.ts';

/** What the client needs of a configured node. */
export type CmsNodeConnection = Pick<CmsNodeConfig, 'name' | 'url' | 'username' | 'password' | 'caFile'>;

export interface CmsClientOptions {
  /** TCP + TLS handshake deadline; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Whole-request deadline (headers and body); default 10000 ms. */
  requestTimeoutMs?: number;
  /** Keep-alive connections to the node; default 4. */
  connections?: number;
  /** Idle time before a kept-alive connection is closed; default 30000 ms. */
  keepAliveTimeoutMs?: number;
  /** `limit` asked for when paging; CMS caps it at its own page size anyway. Default 100. */
  pageSize?: number;
}

export interface CmsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface CmsRequest {
  query?: FormFields;
  /** Sent as application/x-www-form-urlencoded. */
  form?: FormFields;
}

/**
 * The CMS REST API of one node (Call Bridge): Basic auth, keep-alive, deadlines on every request, TLS
 * verification always on (a private CA via `caFile`). Every failure is a CmsApiError; nothing here logs.
 */
export class CmsClient {
  readonly node: string;
  /** The node's base URL (no credentials in it). */
  readonly url: string;
  readonly #pool: Pool;
  // Private so the credentials never show up when the client is logged or inspected.
  readonly #authorization: string;
  readonly #basePath: string;
  readonly #requestTimeoutMs: number;
  readonly #pageSize: number;

  constructor(node: CmsNodeConnection, options: CmsClientOptions = {}) {
    const url = new URL(node.url);
    this.node = node.name;
    this.url = url.origin + url.pathname.replace(/\/+$/, '');
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.#authorization = `Basic ${Buffer.from(`${node.username}:${node.password}`, 'utf8').toString('base64')}`;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#pageSize = options.pageSize ?? 100;
    // Read once: a CA bundle replaces the default roots for this node only (self-signed Web Admin certificates).
    const ca = node.caFile ? readFileSync(node.caFile) : undefined;
    this.#pool = new Pool(url.origin, {
      connections: options.connections ?? 4,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
      headersTimeout: this.#requestTimeoutMs,
      bodyTimeout: this.#requestTimeoutMs,
      connect: { timeout: options.connectTimeoutMs ?? 5000, ...(ca ? { ca } : {}) },
    });
  }

  // ---- calls ----

  async getCall(id: string): Promise<CmsCall> {
    return (await this.#getObject(`/api/v1/calls/${enc(id)}`, 'call')) as CmsCall;
  }

  /** One page of GET /api/v1/calls (coSpaceFilter, tenantFilter, filter). */
  listCalls(query: CmsListQuery = {}): Promise<CmsPage<CmsCallSummary>> {
    return this.#list<CmsCallSummary>('/api/v1/calls', 'calls', 'call', query);
  }

  /** Every call, paging until offset + returned reaches total. */
  allCalls(query: CmsListQuery = {}): AsyncGenerator<CmsCallSummary> {
    return this.#all<CmsCallSummary>('/api/v1/calls', 'calls', 'call', query);
  }

  /** PUT /api/v1/calls/<id>: security message, lock, recording, streaming, ... */
  async updateCall(id: string, fields: CallUpdate): Promise<void> {
    await this.request('PUT', `/api/v1/calls/${enc(id)}`, { form: fields as FormFields });
  }

  /** DELETE /api/v1/calls/<id>: ends the call (on this bridge; other instances of a meeting end on their own). */
  async deleteCall(id: string): Promise<void> {
    await this.request('DELETE', `/api/v1/calls/${enc(id)}`);
  }

  // ---- call legs ----

  listCallLegs(callId: string, query: CmsListQuery = {}): Promise<CmsPage<CmsCallLegSummary>> {
    return this.#list<CmsCallLegSummary>(`/api/v1/calls/${enc(callId)}/callLegs`, 'callLegs', 'callLeg', query);
  }

  allCallLegs(callId: string, query: CmsListQuery = {}): AsyncGenerator<CmsCallLegSummary> {
    return this.#all<CmsCallLegSummary>(`/api/v1/calls/${enc(callId)}/callLegs`, 'callLegs', 'callLeg', query);
  }

  async getCallLeg(id: string): Promise<CmsCallLeg> {
    return (await this.#getObject(`/api/v1/callLegs/${enc(id)}`, 'callLeg')) as CmsCallLeg;
  }

  /** PUT /api/v1/callLegs/<id>: mutes, layout, ... */
  async updateCallLeg(id: string, fields: CallLegUpdate): Promise<void> {
    await this.request('PUT', `/api/v1/callLegs/${enc(id)}`, { form: fields as FormFields });
  }

  /** DELETE /api/v1/callLegs/<id>: disconnects the leg. */
  async deleteCallLeg(id: string): Promise<void> {
    await this.request('DELETE', `/api/v1/callLegs/${enc(id)}`);
  }

  // ---- participants ----

  /** PUT /api/v1/participants/<id> (`deactivated: false` admits from the lobby). */
  async updateParticipant(id: string, fields: ParticipantUpdate): Promise<void> {
    await this.request('PUT', `/api/v1/participants/${enc(id)}`, { form: fields as FormFields });
  }

  /** GET /api/v1/participants/<id>: top-level fields plus `configuration` and `status` objects. */
  async getParticipant(id: string): Promise<CmsObject> {
    return this.#getObject(`/api/v1/participants/${enc(id)}`, 'participant');
  }

  /**
   * PUT /api/v1/calls/<id>/participants/*: one change for every participant of the call hosted on this bridge, except
   * (mode exclude, the default) or only (mode selected) the participants in `filterIds` (CMS takes at most 20).
   */
  async updateAllParticipants(callId: string, fields: ParticipantsBulkUpdate): Promise<void> {
    const { filterIds, ...rest } = fields;
    if (filterIds && filterIds.length > MAX_FILTER_IDS) throw new RangeError(`filterIds takes at most ${MAX_FILTER_IDS} ids`);
    const form: FormFields = { ...(rest as FormFields), filterIds: filterIds?.length ? filterIds.join(',') : undefined };
    await this.request('PUT', `/api/v1/calls/${enc(callId)}/participants/*`, { form });
  }

  /** POST /api/v1/calls/<id>/participants; returns the new participant's id (from the Location header). */
  async addParticipant(callId: string, remoteParty: string, options: AddParticipantOptions = {}): Promise<string> {
    const path = `/api/v1/calls/${enc(callId)}/participants`;
    const response = await this.request('POST', path, { form: { remoteParty, ...options } });
    const id = idFromLocation(response.headers.location);
    if (!id) throw new CmsApiError({ node: this.node, method: 'POST', path, status: response.status, failureReason: 'noLocation' });
    return id;
  }

  // ---- system ----

  /** GET /api/v1/system/status: cheap, and answers 401 while our credentials are refused. */
  getSystemStatus(): Promise<CmsObject> {
    return this.#getObject('/api/v1/system/status', 'status');
  }

  /**
   * One API request. Resolves on 2xx (CMS answers 200 to everything that worked), throws CmsApiError otherwise:
   * with CMS's status and failure reason, or status 0 with 'timeout' / 'connectionFailed' / 'tlsFailed'.
   */
  async request(method: string, path: string, request: CmsRequest = {}): Promise<CmsResponse> {
    const query = request.query ? encodeForm(request.query) : '';
    const fullPath = `${this.#basePath}${path}${query ? `?${query}` : ''}`;
    const headers: Record<string, string> = { authorization: this.#authorization, accept: 'text/xml' };
    let body: string | undefined;
    if (request.form) {
      body = encodeForm(request.form);
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#requestTimeoutMs);
    try {
      const response = await this.#pool.request({ method: method as 'GET', path: fullPath, headers, body, signal: controller.signal });
      const text = await response.body.text();
      if (response.statusCode < 200 || response.statusCode > 299) {
        const failure = failureDetails(text);
        throw new CmsApiError({
          node: this.node,
          method,
          path: fullPath,
          status: response.statusCode,
          failureReason: failure?.reason ?? null,
          ...(failure?.parameter ? { parameter: failure.parameter } : {}),
        });
      }
      return { status: response.statusCode, headers: response.headers, body: text };
    } catch (err) {
      if (err instanceof CmsApiError) throw err;
      throw new CmsApiError({
        node: this.node,
        method,
        path: fullPath,
        status: 0,
        failureReason: transportFailure(err, controller.signal.aborted),
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  async #getObject(path: string, root: string): Promise<CmsObject> {
    const response = await this.request('GET', path);
    const object = rootObject(parseCmsXml(response.body), root);
    if (!object)
      throw new CmsApiError({ node: this.node, method: 'GET', path, status: response.status, failureReason: 'unexpectedAnswer' });
    return object;
  }

  async #list<T extends CmsObject>(path: string, root: string, child: string, query: CmsListQuery): Promise<CmsPage<T>> {
    const response = await this.request('GET', path, { query });
    const collection = rootObject(parseCmsXml(response.body), root);
    if (!collection)
      throw new CmsApiError({ node: this.node, method: 'GET', path, status: response.status, failureReason: 'unexpectedAnswer' });
    const items = children(collection, child) as T[];
    const total = Number(collection.total);
    return { total: Number.isFinite(total) ? total : items.length, offset: query.offset ?? 0, items };
  }

  /**
   * Pages are not a stable snapshot (objects come and go between pages), so an id seen on an earlier page is not
   * yielded twice; one that moved to an earlier page may be missed, as with any CMS client.
   */
  async *#all<T extends CmsObject & { id: string }>(path: string, root: string, child: string, query: CmsListQuery): AsyncGenerator<T> {
    const seen = new Set<string>();
    let offset = query.offset ?? 0;
    for (;;) {
      const page = await this.#list<T>(path, root, child, { ...query, offset, limit: query.limit ?? this.#pageSize });
      for (const item of page.items) {
        if (seen.has(item.id)) continue;
        seen.add(item.id);
        yield item;
      }
      offset += page.items.length;
      if (page.items.length === 0 || offset >= page.total) return;
    }
  }
}

/** The most participant ids CMS takes in filterIds of a bulk participant PUT. */
export const MAX_FILTER_IDS = 20;

function enc(id: string): string {
  return encodeURIComponent(id);
}

/** Booleans as true/false, numbers as text, undefined left out (an omitted parameter keeps its value on PUT). */
export function encodeForm(fields: FormFields): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    params.append(key, String(value));
  }
  return params.toString();
}

function idFromLocation(location: string | string[] | undefined): string | undefined {
  const value = Array.isArray(location) ? location[0] : location;
  if (!value) return undefined;
  return value.split('?')[0]?.split('/').filter(Boolean).at(-1);
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function transportFailure(err: unknown, deadlinePassed: boolean): CmsTransportFailure {
  if (deadlinePassed) return 'timeout';
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = String((e as { code?: unknown }).code ?? '');
    if (TIMEOUT_CODES.has(code)) return 'timeout';
    // OpenSSL verification codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED, ...) and Node TLS errors.
    if (/CERT|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH|^ERR_TLS|^ERR_SSL/.test(code)) return 'tlsFailed';
  }
  return 'connectionFailed';
}
