/**
 * JSON schemas shared by the routes: Fastify validates query parameters with them, serialises answers with
 * them, and @fastify/swagger publishes them at /docs.
 */
import {
  CALL_MESSAGE_STATUSES,
  type CallMessageStatus,
  CMS_WRITE_STATUSES,
  type CmsWriteStatus,
  LEG_ENDED_BY_RECONCILIATION,
  OBSERVATION_SOURCES,
} from '@cms/db';

const nullableString = { type: ['string', 'null'] } as const;
const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;
const nullableBoolean = { type: ['boolean', 'null'] } as const;

/** Filter values are ids and names; the cap keeps absurd inputs out of the index lookups. */
export const filterString = { type: 'string', minLength: 1, maxLength: 256 } as const;

/** CMS's ids (call, call leg, call correlator, session, Call Bridge) are GUIDs. */
export const GUID_PATTERN = '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$';

/** A filter on a CMS id: anything else could never match, so it answers 400 rather than an empty page. */
export const guidParameter = { type: 'string', pattern: GUID_PATTERN } as const;

export const CURSOR_PATTERN = '^[A-Za-z0-9_-]+$';

export const cursorParameter = {
  type: 'string',
  minLength: 1,
  maxLength: 1024,
  pattern: CURSOR_PATTERN,
  description: 'nextCursor from the previous page, unchanged.',
} as const;

const problemSchema = {
  $id: 'problem',
  type: 'object',
  description: 'RFC 9457 problem details',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string', description: 'What went wrong, naming the parameter at fault.' },
    instance: { type: 'string' },
  },
  additionalProperties: true,
} as const;

function problemResponse(description: string) {
  return { description, content: { 'application/problem+json': { schema: { $ref: 'problem#' } } } };
}

/** The error answers every authenticated route can give. */
export const errorResponses = {
  400: problemResponse('A parameter is invalid or unknown; `detail` names it.'),
  401: problemResponse('No bearer token, or one this service does not know.'),
  403: problemResponse('The token is valid but its role is too low for this endpoint.'),
};

export const bearerSecurity = [{ bearerAuth: [] }];

/** A record's own element under Cisco's names (attributes without "@", repeated elements as arrays). */
const objectFields = {
  type: 'object',
  properties: { id: nullableString },
  additionalProperties: true,
} as const;

const recordSchema = {
  $id: 'record',
  type: 'object',
  description:
    'One CDR. Its own element (call, callLeg, recording or streaming) appears under that name with Cisco field names ' +
    '(attributes without "@", alarm always an array). Record types from later CMS releases show their elements under their own names.',
  required: ['id', 'session', 'type', 'time', 'recordIndex', 'correlatorIndex', 'receivedAt'],
  properties: {
    id: { type: 'integer', description: 'Arrival order; the keyset pagination key.' },
    session: { type: 'string' },
    callBridge: nullableString,
    node: nullableString,
    type: { type: 'string' },
    time: { type: 'string', format: 'date-time' },
    recordIndex: { type: 'integer' },
    correlatorIndex: { type: 'integer' },
    numPreceedingRecordsMissing: nullableInteger,
    receivedAt: { type: 'string', format: 'date-time' },
    callId: nullableString,
    callLegId: nullableString,
    callCorrelator: nullableString,
    call: objectFields,
    callLeg: objectFields,
    recording: objectFields,
    streaming: objectFields,
  },
  additionalProperties: true,
} as const;

/** 1 secure domain, 2 internal domain, 3 guest / app / other domain; null while nobody counts. */
const levelSchema = {
  type: ['integer', 'null'],
  enum: [1, 2, 3, null],
  description:
    '1: every counted participant from a secure domain; 2: worst is an internal domain; 3: a guest, app user or other domain; null: nobody counts.',
} as const;

export const levelParameter = {
  type: 'integer',
  enum: [1, 2, 3],
  description: 'Only meetings at this security level (1 secure, 2 internal, 3 external).',
} as const;

/** What each value means to an API client; a Record, so a status added in libs/db cannot go undocumented. */
const CALL_MESSAGE_STATUS_MEANINGS: Record<CallMessageStatus, string> = {
  pending: 'not on screen yet',
  applied: 'CMS shows it',
  unchanged: 'CMS already showed it',
  callEnded: 'the call ended first',
  deadLettered: 'CMS refused or kept failing, see writes',
  unplaced: 'no CMS node known for the call yet',
  unmanaged: 'the call is on a CMS node this system does not manage (not in cms.nodes): nothing is written',
};

const CMS_WRITE_STATUS_MEANINGS: Record<CmsWriteStatus, string> = {
  applied: 'CMS took the write',
  unchanged: 'CMS already showed the message, nothing was written',
  callEnded: 'CMS no longer had the call',
  deadLettered: 'CMS refused the write or it kept failing; given up',
  retrying: 'it failed or CMS was busy, and it is tried again',
  held: "CMS refused our credentials or certificate; the node's writes wait until it accepts them",
};

function describeValues(meanings: Record<string, string>): string {
  return Object.entries(meanings)
    .map(([value, meaning]) => `${value}: ${meaning}`)
    .join('; ');
}

const messageStatus = {
  type: 'string',
  enum: CALL_MESSAGE_STATUSES,
  description: `${describeValues(CALL_MESSAGE_STATUS_MEANINGS)}.`,
} as const;

const callMessageSummary = {
  type: ['object', 'null'],
  description: 'The on-screen message the policy wants this call to show, and whether it does; null before the policy has decided.',
  required: ['text', 'status'],
  properties: { text: { type: 'string', description: 'Empty when the message is cleared.' }, status: messageStatus },
  additionalProperties: false,
} as const;

const callMessageSchema = {
  $id: 'callMessage',
  type: ['object', 'null'],
  description:
    'Desired on-screen message of one call instance (call_messages) and the version CMS has applied; null before the policy has decided.',
  required: ['text', 'duration', 'version', 'desiredAt', 'status'],
  properties: {
    text: { type: 'string', description: 'Empty when the message is cleared.' },
    position: { ...nullableString, description: 'top, middle or bottom; null for the clear form.' },
    duration: { type: 'string', description: 'Seconds or "permanent"; "0" clears.' },
    level: levelSchema,
    version: { type: 'integer', description: 'Bumped on every change of the desired message.' },
    desiredAt: { type: 'string', format: 'date-time' },
    status: messageStatus,
    appliedVersion: { ...nullableInteger, description: 'The version CMS shows; behind `version` while a write is pending.' },
    appliedAt: nullableTimestamp,
  },
  additionalProperties: false,
} as const;

const callProperties = {
  id: { type: 'string' },
  node: nullableString,
  callBridge: nullableString,
  session: nullableString,
  name: nullableString,
  ownerName: nullableString,
  callType: nullableString,
  coSpace: nullableString,
  tenant: nullableString,
  cdrTag: nullableString,
  callCorrelator: nullableString,
  startedAt: nullableTimestamp,
  endedAt: nullableTimestamp,
  callLegsCompleted: nullableInteger,
  callLegsMaxActive: nullableInteger,
  durationSeconds: nullableInteger,
  endpointRecorded: nullableString,
  updatedAt: { type: 'string', format: 'date-time' },
  meetingKey: { type: 'string', description: 'The meeting this call instance belongs to: its callCorrelator, or its id when it has none.' },
  level: { ...levelSchema, description: `The meeting's security level. ${levelSchema.description}` },
} as const;

const callSummarySchema = {
  $id: 'callSummary',
  type: 'object',
  description:
    'A call instance (one per Call Bridge; a distributed meeting shares callCorrelator). Fields are null until CMS has sent them.',
  required: ['id', 'legCount', 'activeLegCount', 'meetingKey', 'level', 'message'],
  properties: {
    ...callProperties,
    legCount: { type: 'integer', description: 'Call legs seen for this call.' },
    activeLegCount: { type: 'integer', description: 'Call legs without a callLegEnd yet.' },
    activeBridgeLinkCount: {
      type: 'integer',
      description:
        'Of activeLegCount, the links to other bridges of a distributed meeting (subType distributionLink) or to a ' +
        'Lync/Skype conference (lyncDistribution): they carry participants counted on their own bridge, not people.',
    },
    message: callMessageSummary,
  },
  additionalProperties: false,
} as const;

const classificationSchema = {
  $id: 'classification',
  type: 'object',
  description:
    'How the policy (as this service is configured) sees the participant: whether it counts, and the level it gives, ' +
    'with the rule that fired and, for domain and network rules, the list entry that matched and the host it was matched on.',
  required: ['counts', 'why', 'level', 'rule', 'matched', 'host', 'address'],
  properties: {
    counts: { type: 'boolean', description: 'Whether the leg counts towards the meeting level now.' },
    why: {
      type: 'string',
      description: 'connected, inLobbyCounted, ended, distributionLink, recorderOrStreamer, inIvr, notConnected or inLobby.',
    },
    level: { type: 'integer', enum: [1, 2, 3], description: 'The level the leg has (or would have, when it does not count).' },
    rule: {
      type: 'string',
      description: 'guest, app, secureDomain, internalDomain, unlistedDomain, ipNotListed, phoneNumber, invalidAddress or noAddress.',
    },
    matched: { ...nullableString, description: 'The policy.secureDomains / policy.internalDomains entry that matched.' },
    host: { ...nullableString, description: 'The host (domain or IP) taken from the address.' },
    address: { ...nullableString, description: 'The address classified (remoteAddress, else remoteParty).' },
  },
  additionalProperties: false,
} as const;

const callInstanceSchema = {
  $id: 'callInstance',
  type: 'object',
  description: 'One call instance of a meeting, on one Call Bridge.',
  required: ['id'],
  properties: {
    id: { type: 'string' },
    node: nullableString,
    callBridge: nullableString,
    name: nullableString,
    coSpace: nullableString,
    startedAt: nullableTimestamp,
    endedAt: nullableTimestamp,
    message: callMessageSummary,
  },
  additionalProperties: false,
} as const;

const levelChangeSchema = {
  $id: 'levelChange',
  type: 'object',
  description: "A change of a meeting's security level.",
  required: ['id', 'at', 'oldLevel', 'newLevel', 'causeLegId', 'reason'],
  properties: {
    id: { type: 'integer' },
    at: { type: 'string', format: 'date-time' },
    oldLevel: levelSchema,
    newLevel: levelSchema,
    causeLegId: { ...nullableString, description: 'The participant whose classification set the new level.' },
    reason: {
      type: ['object', 'null'],
      description: "That participant's classification when the level changed (rule, matched entry, host).",
      additionalProperties: true,
    },
  },
  additionalProperties: false,
} as const;

const cmsWriteSchema = {
  $id: 'cmsWrite',
  type: 'object',
  description: 'The outcome of one CMS API write (with its retries) made for this call.',
  required: ['id', 'at', 'node', 'kind', 'status', 'attempts'],
  properties: {
    id: { type: 'integer' },
    at: { type: 'string', format: 'date-time' },
    node: { type: 'string' },
    kind: {
      type: 'string',
      description:
        'callMessage for security level messages; an operator action kind (addParticipant, updateCallLeg, ...) for the writes of operator actions (GET /api/v1/actions).',
    },
    target: nullableString,
    desiredText: nullableString,
    version: nullableInteger,
    status: { type: 'string', enum: CMS_WRITE_STATUSES, description: `${describeValues(CMS_WRITE_STATUS_MEANINGS)}.` },
    httpStatus: { ...nullableInteger, description: 'The HTTP status CMS answered last.' },
    failureReason: { ...nullableString, description: "CMS's failureReason, or what went wrong before CMS answered." },
    attempts: { type: 'integer' },
    latencyMs: nullableInteger,
  },
  additionalProperties: false,
} as const;

const liveStateSchema = {
  $id: 'liveState',
  type: 'object',
  description:
    "CMS's live view of the participant: from the events feed (callRoster) within about a second of a change on the bridge, " +
    'or from paced polling where the feed is unavailable. CDRs stay the record of what happened and decide the classification.',
  required: [
    'participantId',
    'state',
    'connected',
    'deactivated',
    'activator',
    'audioMuted',
    'videoMuted',
    'layout',
    'source',
    'updatedAt',
  ],
  properties: {
    participantId: { ...nullableString, description: 'The CMS participant id (for participant API operations).' },
    name: nullableString,
    state: {
      ...nullableString,
      description:
        'initial, ringing, connected or onHold; left: CMS no longer lists the participant and its callLegEnd has not arrived yet.',
    },
    connected: { ...nullableBoolean, description: 'state is connected or onHold.' },
    deactivated: {
      ...nullableBoolean,
      description:
        'true while the participant waits in the lobby, as polling last read it (status/deactivated); null where only the events ' +
        "feed tells (CMS's roster has no lobby element): the leg's own deactivated (CDRs) is the lobby flag then.",
    },
    activator: { ...nullableBoolean, description: 'true: activates the meeting (a host); false: a guest who may wait in the lobby.' },
    audioMuted: nullableBoolean,
    videoMuted: nullableBoolean,
    layout: { ...nullableString, description: "Cisco's layout name (allEqual, speakerOnly, ...)." },
    importance: nullableInteger,
    presenter: nullableBoolean,
    activeSpeaker: nullableBoolean,
    source: { type: 'string', enum: [...OBSERVATION_SOURCES], description: 'Which channel last told us: events or polling.' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
  additionalProperties: false,
} as const;

const callLegSchema = {
  $id: 'callLeg',
  type: 'object',
  required: ['id'],
  properties: {
    id: { type: 'string' },
    callId: nullableString,
    node: nullableString,
    callBridge: nullableString,
    displayName: nullableString,
    remoteParty: nullableString,
    remoteAddress: nullableString,
    localAddress: nullableString,
    type: nullableString,
    subType: nullableString,
    lyncSubType: nullableString,
    direction: nullableString,
    guestConnection: nullableBoolean,
    ownerId: nullableString,
    sipCallId: nullableString,
    groupId: { ...nullableString, description: 'The id for participant API operations on this leg.' },
    cdrTag: nullableString,
    state: nullableString,
    inIvr: nullableBoolean,
    deactivated: { ...nullableBoolean, description: 'true while the leg waits in the lobby.' },
    startedAt: nullableTimestamp,
    connectedAt: nullableTimestamp,
    endedAt: nullableTimestamp,
    endReason: {
      ...nullableString,
      description: `callLegEnd's reason as CMS sent it; "${LEG_ENDED_BY_RECONCILIATION}" when CMS no longer had the call and its callLegEnd was lost.`,
    },
    durationSeconds: nullableInteger,
    activatedDuration: nullableInteger,
    encryptedMedia: nullableBoolean,
    quality: {
      type: ['object', 'null'],
      description: "callLegEnd's quality data (mediaUsagePercentages, alarm[], rxAudio, ...) under Cisco's names.",
      additionalProperties: true,
    },
    updatedAt: { type: 'string', format: 'date-time' },
    classification: { $ref: 'classification#' },
    live: {
      anyOf: [{ $ref: 'liveState#' }, { type: 'null' }],
      description:
        'Live state (null when CMS has not shown this participant live). Legs no CDR has named yet have only this and null CDR fields.',
    },
  },
  additionalProperties: false,
} as const;

const levelHistory = {
  type: 'array',
  items: { $ref: 'levelChange#' },
  description: "The meeting's level changes, newest first (at most 50).",
} as const;

const callDetailSchema = {
  $id: 'callDetail',
  type: 'object',
  required: ['id', 'legs', 'meetingKey', 'level', 'decisiveLegId', 'message', 'instances', 'levelHistory', 'writes'],
  properties: {
    ...callSummarySchema.properties,
    decisiveLegId: {
      ...nullableString,
      description: 'The participant (on any instance of the meeting) whose classification set the level.',
    },
    message: { $ref: 'callMessage#' },
    instances: {
      type: 'array',
      items: { $ref: 'callInstance#' },
      description: 'The other call instances of the same meeting (other Call Bridges), in start order.',
    },
    legs: { type: 'array', items: { $ref: 'callLeg#' } },
    levelHistory,
    writes: { type: 'array', items: { $ref: 'cmsWrite#' }, description: 'CMS API writes for this call, newest first (at most 50).' },
  },
  additionalProperties: false,
} as const;

const meetingProperties = {
  meetingKey: {
    type: 'string',
    description: 'The callCorrelator shared by the call instances, or the call id of a meeting on one instance.',
  },
  level: levelSchema,
  decisiveLegId: { ...nullableString, description: 'The participant whose classification set the level.' },
  updatedAt: { ...nullableTimestamp, description: 'When the policy last stored the level; null before it has.' },
  active: { type: 'boolean', description: 'At least one call instance has no callEnd yet.' },
} as const;

const meetingSummarySchema = {
  $id: 'meetingSummary',
  type: 'object',
  description: 'A meeting: every call instance sharing a callCorrelator, across Call Bridges, with its security level.',
  required: ['meetingKey', 'level', 'decisiveLegId', 'updatedAt', 'active', 'name', 'coSpace', 'instanceCount'],
  properties: {
    ...meetingProperties,
    name: { ...nullableString, description: 'The name of its first started instance.' },
    coSpace: { ...nullableString, description: 'The coSpace of its first started instance.' },
    instanceCount: { type: 'integer', description: 'Call instances recorded.' },
  },
  additionalProperties: false,
} as const;

const meetingDetailSchema = {
  $id: 'meetingDetail',
  type: 'object',
  required: ['meetingKey', 'level', 'decisiveLegId', 'updatedAt', 'active', 'instances', 'participants', 'levelHistory'],
  properties: {
    ...meetingProperties,
    instances: { type: 'array', items: { $ref: 'callInstance#' }, description: 'Its call instances, in start order.' },
    participants: {
      type: 'array',
      items: { $ref: 'callLeg#' },
      description: 'The call legs of every instance, in start order, each with its classification (ended ones too).',
    },
    levelHistory,
  },
  additionalProperties: false,
} as const;

export const sharedSchemas = [
  problemSchema,
  recordSchema,
  classificationSchema,
  liveStateSchema,
  callMessageSchema,
  callInstanceSchema,
  levelChangeSchema,
  cmsWriteSchema,
  callSummarySchema,
  callLegSchema,
  callDetailSchema,
  meetingSummarySchema,
  meetingDetailSchema,
];
