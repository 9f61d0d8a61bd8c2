/**
 * JSON schemas shared by the routes: Fastify validates query parameters with them, serialises answers with
 * them, and @fastify/swagger publishes them at /docs.
 */
const nullableString = { type: ['string', 'null'] } as const;
const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;
const nullableBoolean = { type: ['boolean', 'null'] } as const;

/** Filter values are ids and names; the cap keeps absurd inputs out of the index lookups. */
export const filterString = { type: 'string', minLength: 1, maxLength: 256 } as const;

export const cursorParameter = {
  type: 'string',
  minLength: 1,
  maxLength: 1024,
  pattern: '^[A-Za-z0-9_-]+$',
  description: 'nextCursor from the previous page, unchanged.',
} as const;

export const problemSchema = {
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

export const recordSchema = {
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
} as const;

export const callSummarySchema = {
  $id: 'callSummary',
  type: 'object',
  description:
    'A call instance (one per Call Bridge; a distributed meeting shares callCorrelator). Fields are null until CMS has sent them.',
  required: ['id', 'legCount', 'activeLegCount'],
  properties: {
    ...callProperties,
    legCount: { type: 'integer', description: 'Call legs seen for this call.' },
    activeLegCount: { type: 'integer', description: 'Call legs without a callLegEnd yet.' },
  },
  additionalProperties: false,
} as const;

export const callLegSchema = {
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
    endReason: nullableString,
    durationSeconds: nullableInteger,
    activatedDuration: nullableInteger,
    encryptedMedia: nullableBoolean,
    quality: {
      type: ['object', 'null'],
      description: "callLegEnd's quality data (mediaUsagePercentages, alarm[], rxAudio, ...) under Cisco's names.",
      additionalProperties: true,
    },
    updatedAt: { type: 'string', format: 'date-time' },
  },
  additionalProperties: false,
} as const;

export const callDetailSchema = {
  $id: 'callDetail',
  type: 'object',
  required: ['id', 'legs'],
  properties: {
    ...callSummarySchema.properties,
    legs: { type: 'array', items: { $ref: 'callLeg#' } },
  },
  additionalProperties: false,
} as const;

export const sharedSchemas = [problemSchema, recordSchema, callSummarySchema, callLegSchema, callDetailSchema];
