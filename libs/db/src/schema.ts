import type { XmlObject, XmlValue } from '@cms/cdr';
import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import {
  CALL_MESSAGE_STATUSES,
  CMS_NODE_MODES,
  CMS_WRITE_KINDS,
  CMS_WRITE_STATUSES,
  OBSERVATION_SOURCES,
  OPERATOR_ACTION_KINDS,
  OPERATOR_ACTION_STATUSES,
} from './states.ts';

/**
 * Every CDR exactly once. `session` + `correlatorIndex` is CMS's own unique key for a record, the same for
 * every receiver, so it is the deduplication key (not a BullMQ job id). Partitioned by month on `time` (migration
 * 0008; partitions.ts keeps them): the unique index carries `time` too, as Postgres requires, and a re-sent record
 * carries the same time, so it meets its first copy in the same partition (docs/architecture.md).
 */
export const cdrRecords = pgTable(
  'cdr_records',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    session: text('session').notNull(),
    correlatorIndex: bigint('correlator_index', { mode: 'number' }).notNull(),
    recordIndex: bigint('record_index', { mode: 'number' }).notNull(),
    callBridge: text('call_bridge'),
    node: text('node'),
    type: text('type').notNull(),
    time: timestamp('time', { withTimezone: true, mode: 'string' }).notNull(),
    numPreceedingRecordsMissing: integer('num_preceeding_records_missing'),
    callId: text('call_id'),
    callLegId: text('call_leg_id'),
    callCorrelator: text('call_correlator'),
    /** The whole <record> element, xmltodict style (what cdr-receiver-db served). */
    raw: jsonb('raw').$type<XmlObject>().notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
  },
  // Each index costs every insert, but every API filter needs one per partition: a type, node or session absent
  // from a month would otherwise make that month's partition a full scan.
  (t) => [
    primaryKey({ columns: [t.id, t.time] }),
    uniqueIndex('cdr_records_session_correlator_index').on(t.session, t.correlatorIndex, t.time),
    index('cdr_records_type_idx').on(t.type, t.id),
    index('cdr_records_node_idx').on(t.node, t.id),
    index('cdr_records_session_idx').on(t.session, t.id),
    // Partial: each id is absent from many record types, and a null entry would cost every insert for nothing.
    index('cdr_records_call_id_idx').on(t.callId, t.id).where(sql`call_id IS NOT NULL`),
    index('cdr_records_call_leg_id_idx').on(t.callLegId, t.id).where(sql`call_leg_id IS NOT NULL`),
    index('cdr_records_call_correlator_idx').on(t.callCorrelator, t.id).where(sql`call_correlator IS NOT NULL`),
    // The policy's "which legs are recorders or streamers of these calls", without reading every record of a call.
    index('cdr_records_recorder_idx').on(t.callId).where(sql`type IN ('recordingStart', 'streamingStart')`),
    index('cdr_records_time_idx').on(t.time, t.id),
  ],
);

/** Records from well-formed batches that failed validation, kept with the reason so nothing is lost. */
export const cdrQuarantine = pgTable(
  'cdr_quarantine',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    session: text('session'),
    callBridge: text('call_bridge'),
    node: text('node'),
    position: integer('position').notNull(),
    reason: text('reason').notNull(),
    raw: jsonb('raw').$type<XmlValue>(),
    /** Hash of session + the record's content, so a re-sent batch (however regrouped) does not quarantine it twice. */
    dedupeKey: text('dedupe_key').notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('cdr_quarantine_dedupe_key').on(t.dedupeKey)],
);

/** Where CMS discarded records (numPreceedingRecordsMissing): the records before this one are lost for good. */
export const cdrGaps = pgTable(
  'cdr_gaps',
  {
    session: text('session').notNull(),
    correlatorIndex: bigint('correlator_index', { mode: 'number' }).notNull(),
    callBridge: text('call_bridge'),
    node: text('node'),
    missing: integer('missing').notNull(),
    time: timestamp('time', { withTimezone: true, mode: 'string' }).notNull(),
    detectedAt: timestamp('detected_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.session, t.correlatorIndex] })],
);

/**
 * Each Call Bridge session (a new one on every restart) we have received records from. Written once, when the
 * session is first seen: a per-batch counter here would make every group commit wait on the same rows.
 */
export const cdrSessions = pgTable('cdr_sessions', {
  session: text('session').primaryKey(),
  callBridge: text('call_bridge'),
  node: text('node'),
  firstSeenAt: timestamp('first_seen_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
});

/**
 * One row per call instance (a distributed meeting has one call id per bridge, sharing callCorrelator).
 * A row may exist before its callStart arrives, created by a leg that names it.
 */
export const calls = pgTable(
  'calls',
  {
    id: text('id').primaryKey(),
    node: text('node'),
    callBridge: text('call_bridge'),
    session: text('session'),
    name: text('name'),
    ownerName: text('owner_name'),
    callType: text('call_type'),
    coSpace: text('co_space'),
    tenant: text('tenant'),
    cdrTag: text('cdr_tag'),
    callCorrelator: text('call_correlator'),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'string' }),
    endedAt: timestamp('ended_at', { withTimezone: true, mode: 'string' }),
    callLegsCompleted: integer('call_legs_completed'),
    callLegsMaxActive: integer('call_legs_max_active'),
    durationSeconds: integer('duration_seconds'),
    endpointRecorded: text('endpoint_recorded'),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
    /**
     * A copy of the level of the call's meeting (meetings.level), for GET /calls?level=. Kept by triggers on both
     * tables (migration 0011): written by no application code.
     */
    level: integer('level'),
  },
  (t) => [
    index('calls_started_at_idx').on(t.startedAt.desc().nullsLast(), t.id),
    // The list's order under each filter that can be rare (migrations 0008 and 0009).
    index('calls_call_correlator_started_at_idx').on(t.callCorrelator, t.startedAt.desc().nullsLast(), t.id),
    index('calls_node_started_at_idx').on(t.node, t.startedAt.desc().nullsLast(), t.id),
    index('calls_co_space_started_at_idx').on(t.coSpace, t.startedAt.desc().nullsLast(), t.id),
    index('calls_active_started_at_idx').on(t.startedAt.desc().nullsLast(), t.id).where(sql`ended_at IS NULL`),
    index('calls_level_started_at_idx').on(t.level, t.startedAt.desc().nullsLast(), t.id),
  ],
);

/**
 * `call_legs.end_reason` of a leg ended by reconciliation: CMS no longer had its call, and its callLegEnd record
 * was lost with it. The leg projection keeps such an end until a callLegEnd record gives the real one.
 */
export const LEG_ENDED_BY_RECONCILIATION = 'endedByReconciliation';

/**
 * One row per call leg. Mutable fields follow the record with the highest correlatorIndex seen (`seq`), so
 * the row is the same whatever order the records arrive in; end fields are set whenever callLegEnd arrives.
 */
export const callLegs = pgTable(
  'call_legs',
  {
    id: text('id').primaryKey(),
    callId: text('call_id'),
    node: text('node'),
    callBridge: text('call_bridge'),
    session: text('session'),
    seq: bigint('seq', { mode: 'number' }).notNull().default(-1),
    displayName: text('display_name'),
    remoteParty: text('remote_party'),
    remoteAddress: text('remote_address'),
    localAddress: text('local_address'),
    type: text('type'),
    subType: text('sub_type'),
    lyncSubType: text('lync_sub_type'),
    direction: text('direction'),
    guestConnection: boolean('guest_connection'),
    ownerId: text('owner_id'),
    sipCallId: text('sip_call_id'),
    groupId: text('group_id'),
    cdrTag: text('cdr_tag'),
    state: text('state'),
    inIvr: boolean('in_ivr'),
    deactivated: boolean('deactivated'),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'string' }),
    connectedAt: timestamp('connected_at', { withTimezone: true, mode: 'string' }),
    endedAt: timestamp('ended_at', { withTimezone: true, mode: 'string' }),
    endReason: text('end_reason'),
    durationSeconds: integer('duration_seconds'),
    activatedDuration: integer('activated_duration'),
    encryptedMedia: boolean('encrypted_media'),
    /** callLegEnd's quality data (media usage, alarms, codecs) as CMS sent it. */
    quality: jsonb('quality').$type<XmlObject>(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull().default(sql`now()`),
  },
  (t) => [index('call_legs_call_id_idx').on(t.callId)],
);

/**
 * A meeting: every call instance sharing a callCorrelator (the call id when there is none), across bridges.
 * `level` is its worst counted participant's security level (null: nobody counted, message cleared).
 */
export const meetings = pgTable(
  'meetings',
  {
    meetingKey: text('meeting_key').primaryKey(),
    level: integer('level'),
    /** The participant whose classification set the level. */
    decisiveLegId: text('decisive_leg_id'),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
  },
  // The meetings list's order (latest decision first), and the same behind the level for ?level= (migration 0012).
  (t) => [
    index('meetings_updated_at_idx').on(t.updatedAt.desc(), t.meetingKey),
    index('meetings_level_updated_at_idx').on(t.level, t.updatedAt.desc(), t.meetingKey),
  ],
);

/** Every change of a meeting's level: when, old -> new, and the participant that caused it. Partitioned by month on `at`. */
export const meetingLevelChanges = pgTable(
  'meeting_level_changes',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    meetingKey: text('meeting_key').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
    oldLevel: integer('old_level'),
    newLevel: integer('new_level'),
    causeLegId: text('cause_leg_id'),
    /** The classification of the decisive participant (rule, matched entry, host). */
    reason: jsonb('reason').$type<Record<string, unknown>>(),
  },
  (t) => [primaryKey({ columns: [t.id, t.at] }), index('meeting_level_changes_meeting_idx').on(t.meetingKey, t.id)],
);

/**
 * The counted participants of each call instance as the policy worker last decided them (level and classification),
 * kept so that a change to a large meeting is decided from the changed legs and each instance's worst participant
 * (one index read) instead of every leg again. Keyed by the leg (or, for a participant only CMS's live view shows,
 * the observation's id). Written only by the policy worker, under the meeting's lock.
 */
export const participantLevels = pgTable(
  'participant_levels',
  {
    legId: text('leg_id').primaryKey(),
    callId: text('call_id').notNull(),
    level: integer('level').notNull(),
    classification: jsonb('classification').$type<Record<string, unknown>>().notNull(),
  },
  // The worst participant of an instance, first by leg id: what meetingLevel finds first at the worst level.
  (t) => [index('participant_levels_worst_idx').on(t.callId, t.level.desc(), t.legId)],
);

/**
 * Call instances whose participant_levels rows hold every counted participant, and under which policy (its
 * fingerprint): an instance with no row, or another fingerprint, is decided from all of its legs again.
 */
export const participantLevelSyncs = pgTable('participant_level_syncs', {
  callId: text('call_id').primaryKey(),
  policy: text('policy').notNull(),
  syncedAt: timestamp('synced_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
});

/**
 * Desired on-screen message per call instance: the policy worker sets it (bumping `version`), the actuator makes
 * CMS match it. Only the latest version is ever written, so a burst of joins costs one write.
 */
export const callMessages = pgTable(
  'call_messages',
  {
    callId: text('call_id').primaryKey(),
    node: text('node'),
    meetingKey: text('meeting_key').notNull(),
    level: integer('level'),
    messageText: text('message_text').notNull(),
    messagePosition: text('message_position'),
    messageDuration: text('message_duration').notNull(),
    version: bigint('version', { mode: 'number' }).notNull().default(1),
    desiredAt: timestamp('desired_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
    appliedVersion: bigint('applied_version', { mode: 'number' }),
    appliedAt: timestamp('applied_at', { withTimezone: true, mode: 'string' }),
    /** CallMessageStatus (states.ts says what each means). */
    status: text('status', { enum: CALL_MESSAGE_STATUSES }).notNull().default('pending'),
  },
  (t) => [index('call_messages_meeting_idx').on(t.meetingKey)],
);

/**
 * Outcome of every CMS API write attempt sequence: what was desired, what CMS answered, how long it took.
 * Partitioned by month on `at`.
 */
export const cmsWrites = pgTable(
  'cms_writes',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
    node: text('node').notNull(),
    /** CmsWriteKind: callMessage, or the operator action kind whose step this write was. */
    kind: text('kind', { enum: CMS_WRITE_KINDS }).notNull(),
    callId: text('call_id'),
    target: text('target'),
    desiredText: text('desired_text'),
    version: bigint('version', { mode: 'number' }),
    /** CmsWriteStatus (states.ts says what each means). */
    status: text('status', { enum: CMS_WRITE_STATUSES }).notNull(),
    httpStatus: integer('http_status'),
    failureReason: text('failure_reason'),
    attempts: integer('attempts').notNull().default(1),
    latencyMs: integer('latency_ms'),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.at] }),
    index('cms_writes_call_idx').on(t.callId, t.id),
    index('cms_writes_node_idx').on(t.node, t.id),
  ],
);

/**
 * Call legs as the CMS API showed them during reconciliation, for legs we have no CDRs for (meetings that began
 * before we ran, or whose records CMS discarded). The policy counts them like CDR legs; CDR facts win where both
 * exist. A reconciliation pass replaces a node's observations, so a leg CMS no longer lists disappears.
 */
export const callLegObservations = pgTable(
  'call_leg_observations',
  {
    id: text('id').primaryKey(),
    callId: text('call_id').notNull(),
    node: text('node').notNull(),
    remoteParty: text('remote_party'),
    type: text('type'),
    subType: text('sub_type'),
    /** initial | ringing | connected | onHold */
    state: text('state'),
    deactivated: boolean('deactivated'),
    observedAt: timestamp('observed_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
    /** The CMS participant that owns the leg (operator actions that CMS takes per participant use it). */
    participantId: text('participant_id'),
    /** The participant's name as the roster shows it. */
    name: text('name'),
    direction: text('direction'),
    /** true: the participant activates the call (hosts); false: a guest that may wait in the lobby. */
    activator: boolean('activator'),
    audioMuted: boolean('audio_muted'),
    videoMuted: boolean('video_muted'),
    layout: text('layout'),
    importance: integer('importance'),
    presenter: boolean('presenter'),
    activeSpeaker: boolean('active_speaker'),
    /** ObservationSource: which channel last told us (the events feed, or paced polling). */
    source: text('source', { enum: OBSERVATION_SOURCES }).notNull().default('polling'),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
  },
  (t) => [
    index('call_leg_observations_call_idx').on(t.callId),
    index('call_leg_observations_node_idx').on(t.node),
    index('call_leg_observations_participant_idx').on(t.participantId),
    index('call_leg_observations_lobby_idx').on(t.callId).where(sql`deactivated`),
  ],
);

/**
 * How the cms-actuator currently learns about each CMS node (events feed or polling) and the node's write health,
 * so the API and the console can show it without asking the actuator.
 */
export const cmsNodeStatus = pgTable('cms_node_status', {
  node: text('node').primaryKey(),
  /** CmsNodeMode (states.ts says what each means). */
  mode: text('mode', { enum: CMS_NODE_MODES }).notNull(),
  /** The node's write health as node-health.ts reports it (ok, busy, held, unreachable). */
  health: text('health'),
  detail: jsonb('detail').$type<Record<string, unknown>>(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
});

/**
 * Every operator action (call control): who asked (token name and role), what, on which call or leg, with which
 * parameters, and how it ended (CMS's status and failure reason). One row per request; its writes are the steps
 * below, one per CMS node (call instance) it touches.
 */
export const operatorActions = pgTable(
  'operator_actions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
    tokenName: text('token_name').notNull(),
    role: text('role').notNull(),
    /** OperatorActionKind (states.ts says what each means). */
    kind: text('kind', { enum: OPERATOR_ACTION_KINDS }).notNull(),
    callId: text('call_id'),
    legId: text('leg_id'),
    meetingKey: text('meeting_key'),
    /** The request body as the operator sent it (Cisco's field names). */
    parameters: jsonb('parameters').$type<Record<string, unknown>>().notNull().default({}),
    /** The Idempotency-Key header: a retried POST with the same key (and token) is the same action. */
    idempotencyKey: text('idempotency_key'),
    /** Hash of what was asked, so a key reused for a different request is refused. */
    requestHash: text('request_hash'),
    /** OperatorActionStatus. */
    status: text('status', { enum: OPERATOR_ACTION_STATUSES }).notNull().default('queued'),
    httpStatus: integer('http_status'),
    failureReason: text('failure_reason'),
    failureParameter: text('failure_parameter'),
    result: jsonb('result').$type<Record<string, unknown>>(),
    completedAt: timestamp('completed_at', { withTimezone: true, mode: 'string' }),
  },
  (t) => [
    uniqueIndex('operator_actions_idempotency_idx').on(t.tokenName, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
    index('operator_actions_call_idx').on(t.callId, t.id),
    index('operator_actions_meeting_idx').on(t.meetingKey, t.id),
  ],
);

/** One CMS node's part of an operator action: one write job on that node's queue, with its outcome and timings. */
export const operatorActionSteps = pgTable(
  'operator_action_steps',
  {
    actionId: bigint('action_id', { mode: 'number' })
      .notNull()
      .references(() => operatorActions.id, { onDelete: 'cascade' }),
    step: integer('step').notNull(),
    node: text('node').notNull(),
    callId: text('call_id'),
    /** What the job writes (ids resolved when the action was accepted). */
    params: jsonb('params').$type<Record<string, unknown>>().notNull().default({}),
    /** OperatorActionStatus. */
    status: text('status', { enum: OPERATOR_ACTION_STATUSES }).notNull().default('queued'),
    httpStatus: integer('http_status'),
    failureReason: text('failure_reason'),
    failureParameter: text('failure_parameter'),
    result: jsonb('result').$type<Record<string, unknown>>(),
    /** CMS writes this step made (PUT/POST/DELETE). */
    writes: integer('writes').notNull().default(0),
    attempts: integer('attempts').notNull().default(0),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'string' }),
    /** When its first write was sent to CMS (after the write ceiling let it through). */
    firstWriteAt: timestamp('first_write_at', { withTimezone: true, mode: 'string' }),
    completedAt: timestamp('completed_at', { withTimezone: true, mode: 'string' }),
    /** Time spent waiting for CMS's answers. */
    cmsMs: integer('cms_ms'),
  },
  (t) => [
    primaryKey({ columns: [t.actionId, t.step] }),
    // The actuator's sweep looks for steps still queued (stored without a job): few, in a growing audit.
    index('operator_action_steps_queued_idx').on(t.actionId).where(sql`status = 'queued'`),
  ],
);

/** Presenter mode on a meeting: who presents, and the action that turned it on. */
export const presenterModes = pgTable('presenter_modes', {
  meetingKey: text('meeting_key').primaryKey(),
  presenterLegId: text('presenter_leg_id').notNull(),
  actionId: bigint('action_id', { mode: 'number' }).notNull(),
  startedAt: timestamp('started_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
});

/** What presenter mode changed on each leg (its layout, mutes, importance before), so turning it off restores them. */
export const presenterSavedLegs = pgTable(
  'presenter_saved_legs',
  {
    meetingKey: text('meeting_key').notNull(),
    callLegId: text('call_leg_id').notNull(),
    node: text('node').notNull(),
    callId: text('call_id').notNull(),
    participantId: text('participant_id'),
    previous: jsonb('previous').$type<Record<string, string | number | boolean | null>>().notNull(),
    actionId: bigint('action_id', { mode: 'number' }).notNull(),
    savedAt: timestamp('saved_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.meetingKey, t.callLegId] })],
);
