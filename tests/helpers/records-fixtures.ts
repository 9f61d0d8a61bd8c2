/**
 * Rows for cdr_records / calls / call_legs (and the policy's meetings, level history, call messages and CMS
 * write outcomes) written straight to Postgres, and a records API built on them, so records-api tests do not
 * depend on the ingest pipeline or the policy worker.
 */

import { after } from 'node:test';
import type { XmlObject } from '@cms/cdr';
import { type Config, loadConfig } from '@cms/config';
import { callLegs, callMessages, calls, cdrRecords, cmsWrites, type Database, meetingLevelChanges, meetings } from '@cms/db';
import { createLogger, type Logger } from '@cms/observability';
import { buildRecordsApi } from '@cms/records-api';
import type { FastifyInstance } from 'fastify';

export const TOKENS = {
  /** API_TOKEN: the admin token named "admin". */
  admin: 'admin-token-0123456789abcdef',
  viewer: 'viewer-token-0123456789abcdef',
  operator: 'operator-token-0123456789abcdef',
  namedAdmin: 'named-admin-token-0123456789abcdef',
} as const;

export const API_TOKENS = [
  { name: 'dashboard', token: TOKENS.viewer, role: 'viewer' },
  { name: 'lobby-desk', token: TOKENS.operator, role: 'operator' },
  { name: 'ops-admin', token: TOKENS.namedAdmin, role: 'admin' },
];

export function recordsApiConfig(
  databaseUrl: string,
  api: Record<string, unknown> = { token: TOKENS.admin, tokens: API_TOKENS },
  policy: Record<string, unknown> = {},
  /** The test's Redis and prefix (console sessions), where the test signs in. */
  redis?: { url: string; prefix: string },
): Config {
  const queue = redis ? { redis: { url: redis.url }, queue: { prefix: redis.prefix } } : {};
  return loadConfig({ env: {}, overrides: { api, database: { url: databaseUrl }, policy, ...queue } });
}

/**
 * The config of a records API and cms-actuator run in process together for operator actions (the test's tokens,
 * database and Redis prefix, no reconciliation passes, the events feed off) writing to the simulated `bridges`;
 * `node` adds fields to each node (maxWritesPerSecond, callBridgeId), `policy` sets the domains.
 */
export function operatorActionsConfig(options: {
  databaseUrl: string;
  redis: { url: string; prefix: string };
  bridges: readonly { name: string; url: string; username: string; password: string; callBridgeId?: string }[];
  node?: (bridge: { callBridgeId?: string }) => Record<string, unknown>;
  policy?: Record<string, unknown>;
}): Config {
  return loadConfig({
    env: {},
    overrides: {
      log: { level: 'silent' },
      api: { token: TOKENS.admin, tokens: API_TOKENS },
      database: { url: options.databaseUrl },
      redis: { url: options.redis.url },
      queue: { prefix: options.redis.prefix },
      actuator: { reconcileIntervalSeconds: 0 },
      ...(options.policy ? { policy: options.policy } : {}),
      cms: {
        events: { enabled: false },
        nodes: options.bridges.map((b) => ({ name: b.name, url: b.url, username: b.username, password: b.password, ...options.node?.(b) })),
      },
    },
  });
}

/** A records API on `db`, closed when the test file ends. */
export async function startRecordsApi(db: Database, options: { config: Config; log?: Logger }): Promise<FastifyInstance> {
  const { app, close } = await buildRecordsApi({ config: options.config, db, log: options.log ?? createLogger('records-api', 'silent') });
  after(close);
  return app;
}

export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

const KIND_BY_TYPE: Record<string, string> = {
  callStart: 'call',
  callEnd: 'call',
  callLegStart: 'callLeg',
  callLegUpdate: 'callLeg',
  callLegEnd: 'callLeg',
  recordingStart: 'recording',
  recordingEnd: 'recording',
  streamingStart: 'streaming',
  streamingEnd: 'streaming',
};

export interface RecordSpec {
  session: string;
  correlatorIndex: number;
  type: string;
  /** RFC 3339 UTC, as CMS sends it. */
  time: string;
  recordIndex?: number;
  node?: string | null;
  callBridge?: string | null;
  callId?: string | null;
  callLegId?: string | null;
  callCorrelator?: string | null;
  numPreceedingRecordsMissing?: number | null;
  /** The id of the record's own element; defaults to callLegId for leg records and callId for call records. */
  objectId?: string;
  /** The record's own element; defaults to the one CMS documents for the type (call for types it does not know). */
  element?: string;
  /** Child elements of the record's own element, xmltodict style. */
  fields?: XmlObject;
}

/** The row the policy worker would store for `spec`, with `raw` in cdr-receiver-db's xmltodict style. */
export function cdrRecordRow(spec: RecordSpec): typeof cdrRecords.$inferInsert {
  const recordIndex = spec.recordIndex ?? spec.correlatorIndex + 1;
  const raw: XmlObject = {
    '@type': spec.type,
    '@time': spec.time,
    '@recordIndex': String(recordIndex),
    '@correlatorIndex': String(spec.correlatorIndex),
  };
  if (spec.numPreceedingRecordsMissing != null) raw['@numPreceedingRecordsMissing'] = String(spec.numPreceedingRecordsMissing);
  const kind = spec.element ?? KIND_BY_TYPE[spec.type] ?? 'call';
  const objectId = spec.objectId ?? (kind === 'callLeg' ? spec.callLegId : spec.callId) ?? `${kind}-${spec.correlatorIndex}`;
  raw[kind] = { '@id': objectId, ...spec.fields };
  return {
    session: spec.session,
    correlatorIndex: spec.correlatorIndex,
    recordIndex,
    callBridge: spec.callBridge ?? null,
    node: spec.node ?? null,
    type: spec.type,
    time: spec.time,
    numPreceedingRecordsMissing: spec.numPreceedingRecordsMissing ?? null,
    callId: spec.callId ?? null,
    callLegId: spec.callLegId ?? null,
    callCorrelator: spec.callCorrelator ?? null,
    raw,
  };
}

/** Inserts in arrival order (ids follow the array), in chunks that stay under Postgres's parameter limit. */
export async function insertRecords(db: Database, specs: RecordSpec[]): Promise<void> {
  for (let i = 0; i < specs.length; i += 1000) {
    await db.insert(cdrRecords).values(specs.slice(i, i + 1000).map(cdrRecordRow));
  }
}

export async function insertCalls(db: Database, rows: (typeof calls.$inferInsert)[]): Promise<void> {
  if (rows.length > 0) await db.insert(calls).values(rows);
}

export async function insertCallLegs(db: Database, rows: (typeof callLegs.$inferInsert)[]): Promise<void> {
  if (rows.length > 0) await db.insert(callLegs).values(rows);
}

export async function insertMeetings(db: Database, rows: (typeof meetings.$inferInsert)[]): Promise<void> {
  if (rows.length > 0) await db.insert(meetings).values(rows);
}

/** Inserted in array order, so ids (the history order) follow it. */
export async function insertLevelChanges(db: Database, rows: (typeof meetingLevelChanges.$inferInsert)[]): Promise<void> {
  if (rows.length > 0) await db.insert(meetingLevelChanges).values(rows);
}

export async function insertCallMessages(db: Database, rows: (typeof callMessages.$inferInsert)[]): Promise<void> {
  if (rows.length > 0) await db.insert(callMessages).values(rows);
}

/** Inserted in array order, so ids (the writes order) follow it. */
export async function insertCmsWrites(db: Database, rows: (typeof cmsWrites.$inferInsert)[]): Promise<void> {
  if (rows.length > 0) await db.insert(cmsWrites).values(rows);
}
