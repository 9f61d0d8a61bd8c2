import { XMLBuilder } from 'fast-xml-parser';
import type { SimRecord, XmlBody } from './records.ts';

/** A record as placed in one POST to one receiver. */
export interface OutgoingRecord {
  record: SimRecord;
  recordIndex: number;
  /** Cisco's spelling; set on the first record after discarded ones. */
  numPreceedingRecordsMissing: number;
}

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  format: true,
  indentBy: '  ',
  suppressEmptyNode: true,
});

/** `<records session callBridge?>` with one `<record>` per entry, as a Call Bridge POSTs it. */
export function renderRecords(records: readonly OutgoingRecord[]): string {
  const first = records[0];
  if (!first) throw new RangeError('a CDR batch needs at least one record');
  const envelope: XmlBody = { '@_session': first.record.session };
  if (first.record.callBridge) envelope['@_callBridge'] = first.record.callBridge;
  envelope.record = records.map(renderRecord);
  return builder.build({ '?xml': { '@_version': '1.0' }, records: envelope }) as string;
}

function renderRecord(entry: OutgoingRecord): XmlBody {
  const { record } = entry;
  const element: XmlBody = {
    '@_type': record.type,
    '@_time': record.time,
    '@_recordIndex': String(entry.recordIndex),
    '@_correlatorIndex': String(record.correlatorIndex),
  };
  if (entry.numPreceedingRecordsMissing > 0) element['@_numPreceedingRecordsMissing'] = String(entry.numPreceedingRecordsMissing);
  element[record.objectKind] = { '@_id': record.objectId, ...record.body };
  return element;
}
