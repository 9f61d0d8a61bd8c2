import { bodyText } from './body-text.ts';
import { CdrParseError } from './errors.ts';
import { rejectHostileInput } from './hostile-input.ts';
import { toCdrRecord } from './record.ts';
import { readRecordsDocument } from './records-document.ts';
import { unstorableId } from './storable.ts';
import type { CdrBatch, CdrRecord, RejectedRecord } from './types.ts';

/** Limits that keep one hostile or broken POST from taking unbounded time and memory. */
export interface ParseCdrOptions {
  /** Most XML elements in one body. Default 250,000: over 6,000 callLegEnd records; CMS batches are far smaller. */
  maxElements?: number;
  /** Longest single text value, tag with its attributes, comment or CDATA section, in characters. Default 65,536. */
  maxValueLength?: number;
}

/**
 * Parses the body of a CMS CDR POST, whatever its Content-Type. Throws CdrParseError when the body is not a
 * usable `<records>` document; records that fail validation come back in `rejected` with the reason, beside
 * the valid ones.
 */
export function parseCdrBatch(body: string | Uint8Array, options: ParseCdrOptions = {}): CdrBatch {
  const text = bodyText(body);
  if (text.trim() === '') throw new CdrParseError('body is empty; expected a <records> XML document');
  rejectHostileInput(text, { maxElements: options.maxElements ?? 250_000, maxValueLength: options.maxValueLength ?? 65_536 });
  const document = readRecordsDocument(text);
  const session = attributeText(document.attributes, 'session');
  if (session === null) throw new CdrParseError('<records> has no session attribute');
  // The session is the key of every record in the batch (and indexed), so a session that cannot be stored refuses the batch.
  const sessionProblem = unstorableId(session);
  if (sessionProblem !== null) throw new CdrParseError(`<records> session attribute ${sessionProblem}`);

  const records: CdrRecord[] = [];
  const rejected: RejectedRecord[] = [];
  // Only <record> children of <records> are read (and counted in position); anything else is skipped.
  let position = 0;
  for (const raw of document.records) {
    const result = toCdrRecord(raw);
    if (result.record !== undefined) records.push(result.record);
    else rejected.push({ position, reason: result.reason, raw });
    position++;
  }
  return { session, callBridge: attributeText(document.attributes, 'callBridge'), records, rejected };
}

function attributeText(attributes: Readonly<Record<string, string>>, name: string): string | null {
  const value = attributes[name];
  return value === undefined || value === '' ? null : value;
}
