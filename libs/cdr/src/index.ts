export { CdrParseError } from './errors.ts';
export { type ParseCdrOptions, parseCdrBatch } from './parse-batch.ts';
export { type RecordFields, recordFields } from './record-fields.ts';
export { OBJECT_KIND_BY_TYPE } from './record-object.ts';
export { isRfc3339 } from './rfc3339.ts';
export { MAX_ID_BYTES, MAX_OFFSET_HOURS, nulCharacterAt, unstorableId, unstorableTime } from './storable.ts';
export * from './types.ts';
