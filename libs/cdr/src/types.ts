/** The nine record types CMS documents. Others may appear in later releases and are stored as they come. */
export const RECORD_TYPES = [
  'callStart',
  'callEnd',
  'callLegStart',
  'callLegUpdate',
  'callLegEnd',
  'recordingStart',
  'recordingEnd',
  'streamingStart',
  'streamingEnd',
] as const;
export type KnownRecordType = (typeof RECORD_TYPES)[number];

/** The child element a record describes: `<call id>`, `<callLeg id>`, `<recording id>`, `<streaming id>`. */
export type CdrObjectKind = 'call' | 'callLeg' | 'recording' | 'streaming';

/**
 * One element's content in the xmltodict convention that cdr-receiver-db exposed (and its users parse):
 * attributes as "@name", text-with-attributes as "#text", empty elements as null, repeated elements as arrays.
 * All leaf values are strings exactly as CMS sent them (leading zeros, "true", numbers are not coerced).
 */
export type XmlValue = string | null | XmlObject | XmlValue[];
export interface XmlObject {
  [key: string]: XmlValue;
}

/** A validated record, ready for the queue and the database. */
export interface CdrRecord {
  type: string;
  /** RFC 3339 UTC, as sent. */
  time: string;
  recordIndex: number;
  correlatorIndex: number;
  /** Cisco's spelling. Set when CMS discarded records before this one. */
  numPreceedingRecordsMissing: number | null;
  objectKind: CdrObjectKind | null;
  objectId: string | null;
  /** The call this record belongs to, when the record says: `<call id>` itself, or a `<call>` field. */
  callId: string | null;
  /** The call leg this record is about: `<callLeg id>`, or the `<callLeg>` field of recording/streaming records. */
  callLegId: string | null;
  callCorrelator: string | null;
  /** The whole `<record>` element, xmltodict style: `{"@type", "@time", "@recordIndex", "@correlatorIndex", "callLeg": {"@id", ...}}`. */
  raw: XmlObject;
}

/** A record from a well-formed batch that failed validation; kept in quarantine so nothing is lost. */
export interface RejectedRecord {
  /** Position of the record in the batch, from 0. */
  position: number;
  reason: string;
  raw: XmlValue;
}

export interface CdrBatch {
  session: string;
  /** Only present when the Call Bridge is clustered. */
  callBridge: string | null;
  records: CdrRecord[];
  rejected: RejectedRecord[];
}
